"""An app factory for server-process tests and benchmarks: the real app, with the caller taken
from `X-Test-User` / `X-Test-Permissions` headers instead of an access token (token verification
belongs to the access-control work and is not what these tests measure)."""

from __future__ import annotations

import uuid

from fastapi import FastAPI, Request

from kirana.api import asgi
from kirana.api.access.deps import get_principal
from kirana.api.access.principal import Principal


async def header_principal(request: Request) -> Principal | None:
    user = request.headers.get("x-test-user")
    if not user:
        return None
    perms = frozenset(p for p in request.headers.get("x-test-permissions", "").split(",") if p)
    return Principal(user_id=uuid.UUID(user), permissions=perms)


def factory() -> FastAPI:
    app = asgi.factory()
    app.dependency_overrides[get_principal] = header_principal
    return app
