"""One error vocabulary for the whole shop, free of any web framework.

Services (and workers, and the CLI) raise the domain errors below; `kirana.api.problems` renders
them once as RFC 9457 `application/problem+json` answers and documents them in the OpenAPI
document. Each class names its problem type (`code`), so a client can branch on the `type` URI.
A dependency (or any callable a route depends on) says which of them it can raise with
`@raises(...)`; `kirana.api.contract` reads that to list each operation's error answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

RAISES_ATTR = "kirana_raises"
F = TypeVar("F", bound=Callable[..., Any])


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


class PayloadTooLarge(KiranaError):
    status, code, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(KiranaError):
    status, code, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(InvalidInput):
    """FastAPI's request validation (parameters and bodies), with per-field `errors`."""

    code, title = "validation-error", "Invalid request"


class MethodNotAllowed(KiranaError):
    status, code, title = 405, "method-not-allowed", "Method not allowed"


class InternalError(KiranaError):
    status, code, title = 500, "internal-error", "Internal server error"


def raises(*classes: type[KiranaError]) -> Callable[[F], F]:
    """Declare on a callable (a route dependency) the errors it may raise; the OpenAPI
    document of every route that depends on it lists them (`kirana.api.contract`)."""

    def mark(fn: F) -> F:
        setattr(fn, RAISES_ATTR, (*getattr(fn, RAISES_ATTR, ()), *classes))
        return fn

    return mark


def raised_by(fn: Any) -> tuple[type[KiranaError], ...]:
    """What `raises` declared on `fn` (nothing when it declared nothing)."""
    found: tuple[type[KiranaError], ...] = getattr(fn, RAISES_ATTR, ())
    return found
