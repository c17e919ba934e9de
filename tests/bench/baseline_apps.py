"""The bare limits each HTTP benchmark is compared with: one route, nothing else.

`starlette_app` is the floor of any ASGI app under uvicorn; `fastapi_app` adds only FastAPI;
`order_app` places orders with Kirana's own SQL through asyncpg and nothing else.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kirana.api.db.urls import libpq_url
from kirana.api.idempotency import service as idempotency
from kirana.api.orders import sql as placement_sql


async def _ok(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


starlette_app = Starlette(routes=[Route("/livez", _ok)])

fastapi_app = FastAPI()


@fastapi_app.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


# -- order placement over HTTP with nothing but the SQL ---------------------------------------


_CLAIM, _LOCK, _WRITE, _COMPLETE = (
    (s.sql, s.names)
    for s in (
        idempotency._CLAIM_NEW,
        placement_sql.LOCK_VARIANTS,
        placement_sql.WRITE_ORDERS,
        idempotency._COMPLETE,
    )
)
BARE_USER = uuid.UUID("00000000-0000-4000-8000-000000000001")  # made by the commerce benchmark


async def _run(
    conn: asyncpg.Connection, statement: tuple[str, tuple[str, ...]], params: dict[str, Any]
) -> Any:
    sql, names = statement
    return await conn.fetch(sql, *(params[n] for n in names))


async def _place(request: Request) -> Response:
    """POST /v1/orders: Kirana's four statements in one transaction per order (claim the key,
    lock the variants, write everything, store the answer: a batch of one), priced like Kirana,
    answered with the order. No authentication, validation, ORM, framework or batching: the
    floor for one transaction per order over HTTP."""
    body = json.loads(await request.body())
    key = request.headers["idempotency-key"]
    wanted: dict[str, int] = {}
    for line in body["lines"]:
        wanted[line["sku"]] = wanted.get(line["sku"], 0) + int(line["quantity"])
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn, conn.transaction():
        owner = f"user:{BARE_USER}"
        turn = await _run(
            conn,
            _CLAIM,
            {
                "claim_locks": [idempotency.lock_key(owner, key)],
                "claim_ids": [uuid.uuid4()],
                "claim_owners": [owner],
                "claim_keys": [key],
                "claim_fingerprints": ["bare"],
                "claim_methods": ["POST"],
                "claim_paths": ["/v1/orders"],
                "claim_ttl": timedelta(hours=24),
            },
        )
        claim_id = turn[0]["id"]
        rows = {r["sku"]: r for r in await _run(conn, _LOCK, {"skus": list(wanted)})}
        lines = sorted(
            (sku, qty, rows[sku]["price_paise"], rows[sku]["mrp_paise"]) for sku, qty in wanted.items()
        )
        total = sum(qty * price for _, qty, price, _ in lines)
        order_id = uuid.uuid4()
        written = await _run(
            conn,
            _WRITE,
            {
                "order_ids": [order_id],
                "user_ids": [BARE_USER],
                "store_codes": ["main"],
                "subtotals": [total],
                "mrp_totals": [sum(qty * mrp for _, qty, _, mrp in lines)],
                "taxes": [0],
                "totals": [total],
                "item_counts": [sum(qty for _, qty, _, _ in lines)],
                "addresses": [None],
                "reservations": [timedelta(minutes=15)],
                "numbers": [None],
                "line_orders": [order_id for _ in lines],
                "variant_ids": [rows[sku]["id"] for sku, _, _, _ in lines],
                "quantities": [qty for _, qty, _, _ in lines],
                "unit_prices": [price for _, _, price, _ in lines],
                "unit_mrps": [mrp for _, _, _, mrp in lines],
                "tax_rates": [0 for _ in lines],
                "line_taxes": [0 for _ in lines],
                "line_totals": [qty * price for _, qty, price, _ in lines],
            },
        )
        answer = json.dumps(
            {"id": str(order_id), "number": written[0]["number"], "total_paise": total}
        ).encode()
        await _run(
            conn,
            _COMPLETE,
            {
                "answer_statuses": [201],
                "answer_bodies": [answer],
                "answer_headers": ['{"content-type": "application/json"}'],
                "answer_ids": [claim_id],
            },
        )
    return Response(answer, 201, media_type="application/json")


@asynccontextmanager
async def _pool(app: Starlette) -> AsyncIterator[None]:
    url = libpq_url(os.environ["KIRANA_DATABASE_URL"])
    app.state.pool = await asyncpg.create_pool(url, min_size=5, max_size=30)
    yield
    await app.state.pool.close()


order_app = Starlette(
    routes=[Route("/livez", _ok), Route("/v1/orders", _place, methods=["POST"])], lifespan=_pool
)
