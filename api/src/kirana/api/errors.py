"""One error vocabulary for the whole shop, free of any web framework.

Services (and workers, and the CLI) raise the domain errors below; `kirana.api.problems` renders
them once as RFC 9457 `application/problem+json` answers and documents them in the OpenAPI
document. Each class names its problem type (`code`), so a client can branch on the `type` URI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
