"""`/livez` and `/readyz` (Prometheus metrics are served on their own port, see kirana.api.server)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kirana.api.access.deps import Public
from kirana.api.deps import DatabaseDep, RedisDep

router = APIRouter(tags=["health"], dependencies=[Public])

CHECK_TIMEOUT_S = 2.0


class Readiness(BaseModel):
    """`ok` or `unavailable`, with each check's outcome (`ok` or `failed: <reason>`)."""

    status: str
    checks: dict[str, str]


@router.get("/livez", summary="The process is alive", response_model=dict[str, str])
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready for traffic: PostgreSQL and Redis answer and the process is not draining",
    response_model=Readiness,
    responses={503: {"description": "Not ready", "model": Readiness}},
)
async def readyz(request: Request, db: DatabaseDep, redis: RedisDep) -> JSONResponse:
    checks: dict[str, Any] = {}

    async def check(name: str, probe: Any) -> None:
        try:
            await asyncio.wait_for(probe, CHECK_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"failed: {type(exc).__name__}"

    await asyncio.gather(check("postgres", db.ping()), check("redis", redis.ping()))
    draining = bool(getattr(request.app.state, "draining", False))
    if draining:
        checks["shutdown"] = "draining"
    ok = not draining and all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
