"""One error vocabulary for the whole shop, rendered once as RFC 9457 problem+json.

Services raise the domain errors below; `install_handlers` maps them (and Starlette's and
pydantic's own errors) to `application/problem+json` responses. Routes never build error bodies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://kirana.dev/problems/"


class KiranaError(Exception):
    """Base of every error a service may raise on purpose."""

    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


class InvalidInput(KiranaError):
    status, code, title = 422, "invalid-input", "Invalid input"


class NotFound(KiranaError):
    status, code, title = 404, "not-found", "Not found"


class Conflict(KiranaError):
    status, code, title = 409, "conflict", "Conflict"


class InvalidState(KiranaError):
    status, code, title = 409, "invalid-state", "Invalid state"


class Unauthorized(KiranaError):
    status, code, title = 401, "unauthorized", "Authentication required"


class PermissionDenied(KiranaError):
    status, code, title = 403, "forbidden", "Forbidden"


class RateLimited(KiranaError):
    status, code, title = 429, "rate-limited", "Too many requests"


class Unavailable(KiranaError):
    status, code, title = 503, "unavailable", "Service unavailable"


def problem(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    code: str | None = None,
    instance: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Render one problem+json response."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    slug = code or phrase.lower().replace(" ", "-").replace("'", "")
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title or phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def problem_of(exc: KiranaError, *, instance: str | None) -> JSONResponse:
    """The problem+json answer to a domain error."""
    return problem(
        exc.status,
        title=exc.title,
        detail=exc.detail,
        code=exc.code,
        instance=instance,
        extra=exc.extra,
        headers=exc.headers,
    )


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        out.append({"field": ".".join(loc), "location": loc, "message": err.get("msg", "invalid")})
    return out


def install_handlers(app: FastAPI) -> None:
    """Map every error the app can raise to problem+json."""

    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, KiranaError)
        return problem_of(exc, instance=request.url.path)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _field_errors(exc.errors())
        return problem(
            422,
            title="Invalid request",
            code="validation-error",
            detail=f"{len(errors)} field(s) failed validation",
            instance=request.url.path,
            extra={"errors": errors},
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route matches {request.url.path}"
        if exc.status_code == 405 and detail == "Method Not Allowed":
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem(exc.status_code, detail=detail, instance=request.url.path, headers=headers)

    app.add_exception_handler(KiranaError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
