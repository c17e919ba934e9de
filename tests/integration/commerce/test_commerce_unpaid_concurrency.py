"""Concurrent placements by one customer cannot pass the unpaid-order caps together.

Without serialising a customer's placements, every transaction that starts before another
commits reads "under the cap" and places: eight simultaneous orders against a cap of two placed
eight. Two shapes of concurrency reach PostgreSQL at once: orders placed alone (group commit off,
or retries, checkout and sync), and group-commit batches of different API replicas.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from kirana.api.app import create_app
from kirana.api.settings import Settings
from tests.integration.commerce.conftest import Catalog, customer, idem, sign_in

N, CAP = 8, 2


@pytest.fixture(params=["alone", "batched"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "order_max_unpaid": CAP,
            "order_max_unpaid_units": 0,
            "order_max_unpaid_units_per_item": 0,
            "order_batch_max": 0 if request.param == "alone" else 64,
        }
    )


@pytest.fixture
async def replicas(app: FastAPI, settings: Settings) -> AsyncIterator[list[FastAPI]]:
    """The test's app and a second one on the same database and Redis (another replica)."""
    other = create_app(settings, handle_signals=False)
    async with other.router.lifespan_context(other):
        yield [app, other]


def _clients(apps: list[FastAPI], token: str) -> list[AsyncClient]:
    return [
        AsyncClient(
            transport=ASGITransport(app=a, raise_app_exceptions=False),
            base_url="http://kirana.test",
            headers={"Authorization": f"Bearer {token}"},
        )
        for a in apps
    ]


def _unpaid(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM orders WHERE status = 'pending_payment'").fetchone()
        assert row is not None
        return int(row[0])


async def test_simultaneous_orders_of_one_customer_place_exactly_the_cap(
    replicas: list[FastAPI], shop: Catalog, database_url: str
) -> None:
    skus = [f"RACE-{i}" for i in range(N)]
    for sku in skus:  # one item each, so no variant lock orders them
        await shop.product(sku=sku, stock=10)
    token = await sign_in(replicas[0], customer())
    clients = _clients(replicas, token)
    try:
        answers: list[httpx.Response] = await asyncio.gather(
            *(
                clients[i % len(clients)].post(
                    "/v1/orders", json={"lines": [{"sku": sku, "quantity": 1}]}, headers=idem()
                )
                for i, sku in enumerate(skus)
            )
        )
    finally:
        for c in clients:
            await c.aclose()
    codes = Counter(r.status_code for r in answers)
    assert codes == {201: CAP, 409: N - CAP}, [r.text for r in answers]
    assert all(r.json()["type"].endswith("/too-many-unpaid-orders") for r in answers if r.status_code == 409)
    assert _unpaid(database_url) == CAP
