"""An app factory for server-process tests: the real app plus a deliberately slow route."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from kirana.api import asgi


def factory() -> FastAPI:
    app = asgi.factory()

    async def slow(ms: int = 500) -> dict[str, int]:
        await asyncio.sleep(ms / 1000)
        return {"slept_ms": ms}

    app.add_api_route("/slow", slow)
    return app
