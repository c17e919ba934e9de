"""RFC 9457 problem+json: the HTTP face of `kirana.api.errors`.

`install_handlers` (called by `create_app`) maps domain errors, Starlette's HTTP errors,
request-validation errors and database data exceptions (SQLSTATE class 22, 422) to
`application/problem+json`; `problem`/`problem_of` render one answer
for the middleware and the fast edges that answer outside FastAPI's routing. `Problem` is the
pydantic model of that body, referenced by every error response in the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from asyncpg.exceptions import PostgresError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from kirana.api import errors
from kirana.api.db import errors as db_errors
from kirana.api.errors import KiranaError

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://kirana.dev/problems/"


class FieldError(BaseModel):
    """One field that failed validation."""

    field: str = Field(description="Dotted location of the field, e.g. `body.items.0.quantity`.")
    location: list[str] = Field(description="The same location as a list of parts.")
    message: str = Field(description="Why the value was refused.")


class Problem(BaseModel):
    """An RFC 9457 problem detail: the body of every error answer."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": TYPE_BASE + "not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": "no order 0b6f1c1e-8f4e-4a57-9a3b-2f0d8d4b6a10",
                    "instance": "/v1/orders/0b6f1c1e-8f4e-4a57-9a3b-2f0d8d4b6a10",
                }
            ]
        },
    )

    type: str = Field(description="URI naming the problem type; see docs/errors.md.")
    title: str = Field(description="Short human summary of the problem type.")
    status: int = Field(ge=100, le=599, description="The HTTP status code of this answer.")
    detail: str | None = Field(default=None, description="What went wrong this time.")
    instance: str | None = Field(default=None, description="The path the problem is about.")
    errors: list[FieldError] | None = Field(
        default=None, description="Per-field failures (validation problems only)."
    )


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
    out = dict(headers or {})
    if status == 401 and not any(k.lower() == "www-authenticate" for k in out):
        out["WWW-Authenticate"] = "Bearer"  # RFC 9110: every 401 names a scheme
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=out)


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
        fields = _field_errors(exc.errors())
        return problem(
            422,
            title=errors.ValidationFailed.title,
            code=errors.ValidationFailed.code,
            detail=f"{len(fields)} field(s) failed validation",
            instance=request.url.path,
            extra={"errors": fields},
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route matches {request.url.path}"
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; several routes
            # (GET and POST /v1/orders) share one path, and the document lists them all.
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
            if detail == "Method Not Allowed":
                detail = f"{request.method} is not allowed on {request.url.path}"
        return problem(exc.status_code, detail=detail, instance=request.url.path, headers=headers)

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        refused = db_errors.as_invalid_input(exc)
        if refused is None:
            raise exc  # the last line of defence (kirana.api.middleware) logs it and answers 500
        return problem_of(refused, instance=request.url.path)

    app.add_exception_handler(KiranaError, domain_error)
    app.add_exception_handler(DBAPIError, database_error)
    app.add_exception_handler(PostgresError, database_error)  # raised by `db.raw` statements
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


def allowed_methods(app: Any, scope: Mapping[str, Any]) -> list[str]:
    """Every method some route of `app` answers on this request's path (HEAD with GET)."""
    from fastapi.routing import iter_route_contexts
    from starlette.routing import Match

    found: set[str] = set()
    for route in iter_route_contexts(app.routes):
        methods = getattr(route, "methods", None)
        if not methods:
            continue
        match, child = route.matches(dict(scope))
        if match != Match.NONE and _path_params_valid(route, child.get("path_params", {})):
            found |= set(methods)
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return sorted(found, key=lambda m: order.index(m) if m in order else len(order))


def _path_params_valid(route: Any, values: Mapping[str, Any]) -> bool:
    """Whether the path's values are valid for the route's typed path parameters: `DELETE
    /v1/auth/sessions/{session_id}` matches `/v1/auth/sessions/revoke-all` as a pattern, but
    `revoke-all` is no session id, so DELETE is not a method of that resource."""
    from fastapi.dependencies.utils import request_params_to_args

    dependant = getattr(route, "dependant", None)
    if dependant is None or not values:
        return True
    _, errors_ = request_params_to_args(dependant.path_params, values)
    return not errors_
