"""Pure ASGI middleware around every request: request id, access log, metrics, body limits.

One middleware (not a stack of BaseHTTPMiddleware) keeps the per-request overhead small. It is
also the last line of defence: an exception nothing else handled becomes a logged 500
problem+json that reveals no internals.
"""

from __future__ import annotations

import contextlib
import email.message
import functools
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kirana.api import errors, metrics, problems
from kirana.api.logging import request_id_var

if TYPE_CHECKING:
    from kirana.api.access.principal import Principal
    from kirana.api.access.runtime import AccessRuntime

log = logging.getLogger("kirana.api.access")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_UNMATCHED = "<unmatched>"


@dataclass(frozen=True)
class RouteLabel:
    """Set as `scope["route"]` by middleware that answers a request before routing, so metrics
    and the access log name the route template as for any routed request."""

    path_format: str


class _BodyTooLarge(Exception):
    pass


# The ASGI layers that read headers before routing (this one, `catalog.edge`, `orders.edge`)
# read them with Starlette's `Headers(scope=scope)`, as the routes do: the first value of a
# repeated header wins, names match case-insensitively, values decode as latin-1.


def parsed_as_json(content_type: str | None) -> bool:
    """Whether FastAPI parses a body of this Content-Type as JSON: `application/json` or
    `application/<anything>+json`, read by the very test FastAPI applies (`email.message`).
    A missing Content-Type counts as not JSON here (FastAPI would try)."""
    if not content_type:
        return False
    return _json_type(content_type)


@functools.lru_cache(maxsize=256)  # clients send a handful of values; parsing one costs ~20 µs
def _json_type(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    is_json = subtype == "json" or subtype.endswith("+json")
    return message.get_content_maintype() == "application" and is_json


async def authenticated(scope: Scope, authorization: str) -> Principal | None:
    """The principal a route would see for this Authorization header (the access runtime's own
    check: signature, expiry, live session), or None when the route must answer it (401). For
    the edges, which answer a request before routing only when the route would accept it."""
    runtime: AccessRuntime = scope["app"].state.access
    try:
        return await runtime.authenticate_header(authorization)
    except errors.KiranaError:
        return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, skip_metrics: frozenset[str]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.skip_metrics = skip_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = Headers(scope=scope)
        rid = headers.get("x-request-id") or ""
        if not _VALID_REQUEST_ID.match(rid):
            rid = uuid.uuid4().hex
        scope["kirana.request_id"] = rid
        token = request_id_var.set(rid)
        method: str = scope["method"]
        status = 500
        started = False
        t0 = time.perf_counter()
        metrics.IN_FLIGHT.inc()

        oversized = False  # the body passed the limit: whatever the app answers becomes 413

        async def send_wrapper(message: Message) -> None:
            if not oversized:
                await send_own(message)

        async def send_own(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received, oversized
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Answer 413 even if the app catches this (FastAPI answers 400), unless it
                    # has already started its answer.
                    oversized = not started
                    raise _BodyTooLarge
            return message

        try:
            early = self._reject_early(headers, method)
            if early is not None:
                await early(scope, receive, send_own)
            else:
                with contextlib.suppress(_BodyTooLarge):
                    await self.app(scope, receive_wrapper, send_wrapper)
                if oversized and not started:
                    await self._too_large()(scope, receive, send_own)
        except Exception:
            log.exception(
                "unhandled error", extra={"path": scope.get("path"), "method": method, "request_id": rid}
            )
            if not started:
                response = problems.problem(
                    500,
                    title=errors.InternalError.title,
                    code=errors.InternalError.code,
                    detail="An unexpected error occurred; quote the request id when reporting it.",
                    instance=scope.get("path"),
                    extra={"request_id": rid},
                )
                await response(scope, receive, send_own)
        finally:
            metrics.IN_FLIGHT.dec()
            elapsed = time.perf_counter() - t0
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None) or _UNMATCHED
            if template not in self.skip_metrics:
                labels = (template, method, str(status))
                metrics.REQUESTS.labels(*labels).inc()
                metrics.LATENCY.labels(*labels).observe(elapsed)
            if log.isEnabledFor(logging.INFO) and template not in self.skip_metrics:
                log.info(
                    "request",
                    extra={
                        "method": method,
                        "path": scope.get("path"),
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(token)

    def _too_large(self) -> Any:
        return problems.problem(
            413,
            title=errors.PayloadTooLarge.title,
            code=errors.PayloadTooLarge.code,
            detail=f"request body exceeds {self.max_body_bytes} bytes",
        )

    def _reject_early(self, headers: Headers, method: str) -> Any | None:
        if method not in _BODY_METHODS:
            return None
        length = headers.get("content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                return problems.problem(400, detail="Content-Length is not a number")
            if size > self.max_body_bytes:
                return self._too_large()
            if size == 0:
                return None
        elif headers.get("transfer-encoding") is None:
            return None
        content_type = headers.get("content-type")
        if not parsed_as_json(content_type):
            got = content_type or "none"
            return problems.problem(
                415,
                title=errors.UnsupportedMediaType.title,
                code=errors.UnsupportedMediaType.code,
                detail=f"request bodies must be application/json (got {got})",
            )
        return None
