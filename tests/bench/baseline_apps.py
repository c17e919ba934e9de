"""The bare limits each HTTP benchmark is compared with: one route, nothing else.

`starlette_app` is the floor of any ASGI app under uvicorn; `fastapi_app` adds only FastAPI.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def _ok(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


starlette_app = Starlette(routes=[Route("/livez", _ok)])

fastapi_app = FastAPI()


@fastapi_app.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}
