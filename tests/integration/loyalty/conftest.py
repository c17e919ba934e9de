"""Fixtures for loyalty tests: a shop, customers that order, orders moved through their states by
the system, and the worker's real path (outbox relay, then the event consumers) pumped by hand.

Commerce fixtures (`login`, `shop`, `db`) come from tests/integration/commerce/conftest.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient
from redis.asyncio import Redis

from kirana.api import redis as kirana_redis
from kirana.api.db.engine import Database
from kirana.api.notify import providers
from kirana.api.orders import service as orders
from kirana.api.orders.states import Status
from kirana.api.settings import Settings
from kirana.workers import consumers, relay
from tests.integration.commerce.conftest import Catalog, customer, db, idem, login, shop  # noqa: F401

DELIVERY = (Status.packed, Status.shipped, Status.out_for_delivery, Status.delivered)


def address(city: str) -> dict[str, str]:
    return {
        "name": "Test",
        "phone": "9876543210",
        "line1": "1 MG Road",
        "city": city,
        "state": "KA",
        "pincode": "560001",
    }


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with redemption on (20% of an order, the shop default once payments
    subtracts the discount)."""
    return settings.model_copy(update={"loyalty_redeem_max_percent": 20})


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = kirana_redis.connect(settings.redis_url)
    yield client
    await client.aclose()


@dataclass
class Worker:
    """The worker's relay and consumers, run on demand."""

    db: Database
    redis: Redis
    settings: Settings

    async def pump(self) -> int:
        deps = consumers.Deps(
            db=self.db, redis=self.redis, notifier=providers.build(self.settings), settings=self.settings
        )
        handled = 0
        while True:
            sent = await relay.relay_once(self.db, self.redis)
            got = await consumers.consume_once(deps, consumer="test")
            handled += got
            if not sent and not got:
                return handled


@pytest.fixture
def worker(db: Database, redis: Redis, settings: Settings) -> Worker:  # noqa: F811
    return Worker(db, redis, settings)


async def place(
    client: AsyncClient, sku: str, *, qty: int = 1, city: str = "Bengaluru", store: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"lines": [{"sku": sku, "quantity": qty}], "shipping_address": address(city)}
    if store:
        body["store_code"] = store
    r = await client.post("/v1/orders", json=body, headers=idem())
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def move(db: Database, order_id: str, *targets: Status) -> None:  # noqa: F811
    """Move the order through `targets` as the system (payment webhook, delivery staff)."""
    for target in targets:
        async with db.session() as s:
            await orders.transition(s, order_id=uuid.UUID(order_id), target=target, principal=None)


async def delivered_order(
    db: Database,  # noqa: F811
    client: AsyncClient,
    sku: str,
    *,
    qty: int = 1,
    city: str = "Bengaluru",
    store: str | None = None,
) -> str:
    order = await place(client, sku, qty=qty, city=city, store=store)
    await move(db, order["id"], Status.paid, *DELIVERY)
    return str(order["id"])
