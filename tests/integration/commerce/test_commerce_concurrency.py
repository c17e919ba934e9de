"""No overselling under concurrency, and one order per idempotency key however many retries."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections import Counter

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from kirana.api.cart import service as carts
from kirana.api.catalog.errors import OutOfStock
from kirana.api.db.urls import async_url
from kirana.api.orders import placement
from kirana.api.settings import Settings
from tests.integration.commerce.conftest import Catalog, ensure_user
from tests.integration.servers import signed_in_customers, start_server

PROBLEM = "application/problem+json"


def _stock(database_url: str, sku: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT stock FROM catalog_variants WHERE sku = %s", (sku,)).fetchone()
        assert row is not None
        return int(row[0])


def _count(database_url: str, sql: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return int(row[0])


async def _users(shop: Catalog, n: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    for user_id in ids:
        await ensure_user(shop.db, user_id)
    return ids


async def test_200_orders_from_200_connections_sell_exactly_the_50_in_stock(
    shop: Catalog, database_url: str
) -> None:
    await shop.product(sku="HOT-SKU", stock=50, price=9_900)
    buyers = iter(await _users(shop, 200))
    # NullPool: every session below opens its own PostgreSQL connection (200 at once).
    engine = create_async_engine(async_url(database_url), poolclass=NullPool)
    policy = placement.Policy()
    start = asyncio.Event()

    async def buy() -> str:
        await start.wait()
        async with AsyncSession(engine) as session:
            try:
                async with session.begin():
                    pid = await session.scalar(text("SELECT pg_backend_pid()"))
                    await placement.place_order(
                        session, placement.Placement(next(buyers), [carts.Line("HOT-SKU", 1)], policy)
                    )
                return f"ok:{pid}"
            except OutOfStock:
                return f"out:{pid}"

    tasks = [asyncio.create_task(buy()) for _ in range(200)]
    await asyncio.sleep(0.2)
    start.set()
    results = await asyncio.gather(*tasks)  # any other exception (deadlock, 500) fails the test
    await engine.dispose()

    kinds = Counter(r.split(":")[0] for r in results)
    assert kinds == {"ok": 50, "out": 150}
    assert len({r.split(":")[1] for r in results}) > 1  # really separate connections
    assert _stock(database_url, "HOT-SKU") == 0
    assert _count(database_url, "SELECT count(*) FROM orders") == 50
    assert _count(database_url, "SELECT coalesce(sum(quantity), 0) FROM order_lines") == 50


@pytest.fixture
def server(settings: Settings) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        "KIRANA_DATABASE_URL": settings.database_url,
        "KIRANA_REDIS_URL": settings.redis_url,
        "KIRANA_ENVIRONMENT": "test",
        "KIRANA_DATA_DIR": str(settings.data_dir),
        "KIRANA_DB_POOL_SIZE": "40",
        "KIRANA_DB_MAX_OVERFLOW": "40",
        "KIRANA_DRAIN_SECONDS": "0",
        "KIRANA_LOG_LEVEL": "WARNING",
    }
    proc, base = start_server(env, app_factory="kirana.api.asgi:factory")
    yield proc, base
    proc.terminate()
    proc.wait(30)


def _headers(token: str, key: str | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {token}"}
    if key:
        h["Idempotency-Key"] = key
    return h


async def test_200_simultaneous_http_orders_against_a_real_server(
    shop: Catalog, server: tuple[subprocess.Popen[bytes], str], database_url: str
) -> None:
    await shop.product(sku="HOT-HTTP", stock=50, price=4_900)
    _, base = server
    tokens = signed_in_customers(database_url, base, 10)  # real accounts, signed in via /v1/auth/login
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def buy(token: str) -> httpx.Response:
            return await client.post(
                "/v1/orders",
                json={"lines": [{"sku": "HOT-HTTP", "quantity": 1}]},
                headers=_headers(token, str(uuid.uuid4())),
            )

        responses = await asyncio.gather(*(buy(tokens[i % len(tokens)]) for i in range(200)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 50, 409: 150}, statuses
    for r in responses:
        if r.status_code == 409:
            assert r.headers["content-type"] == PROBLEM
            body = r.json()
            assert body["type"].endswith("/out-of-stock")
            assert body["lines"] == [{"sku": "HOT-HTTP", "requested": 1, "available": 0}]
    assert _stock(database_url, "HOT-HTTP") == 0
    assert _count(database_url, "SELECT count(*) FROM orders") == 50


async def test_concurrent_retries_with_one_key_place_one_order(
    shop: Catalog, server: tuple[subprocess.Popen[bytes], str], database_url: str
) -> None:
    await shop.product(sku="RETRY-ME", stock=100, price=2_500)
    _, base = server
    (user,), key = signed_in_customers(database_url, base, 1), str(uuid.uuid4())
    body = {"lines": [{"sku": "RETRY-ME", "quantity": 2}]}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/orders", json=body, headers=_headers(user, key)) for _ in range(30))
        )
        # Once the first has finished, every retry replays exactly the same answer.
        later = await client.post("/v1/orders", json=body, headers=_headers(user, key))
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409} and statuses[201] >= 1, statuses
    created = [r for r in responses if r.status_code == 201]
    assert len({r.json()["id"] for r in created}) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.json()["type"].endswith("/idempotency-key-in-use")
            assert r.headers["retry-after"] == "1"
    assert later.status_code == 201
    assert later.content == created[0].content
    assert later.headers["idempotent-replayed"] == "true"
    assert _count(database_url, "SELECT count(*) FROM orders") == 1
    assert _stock(database_url, "RETRY-ME") == 98
