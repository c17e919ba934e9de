"""One customer cannot hoard stock with unpaid orders: caps on unpaid orders, reserved units and
units of one item (a review took a product out of stock with two unpaid orders of 50 and 26
units), and metrics of how placed orders end."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api import metrics
from kirana.api.db.engine import Database
from kirana.api.orders import service as orders
from kirana.api.orders.batch import OrderBatcher
from kirana.api.settings import Settings
from tests.integration.commerce.conftest import Catalog, Login, customer, idem


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"order_max_unpaid": 2, "order_max_unpaid_units": 30, "order_max_unpaid_units_per_item": 20}
    )


def _metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", re.M)
    found = pattern.search(text)
    return float(found.group(1)) if found else 0.0


def _order(sku: str, quantity: int) -> dict[str, object]:
    return {"lines": [{"sku": sku, "quantity": quantity}]}


async def test_one_customer_cannot_reserve_more_than_the_caps_of_one_item(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await shop.product(sku="HOARD-1", stock=76)
    await login(customer())
    assert (await client.post("/v1/orders", json=_order("HOARD-1", 20), headers=idem())).status_code == 201
    r = await client.post("/v1/orders", json=_order("HOARD-1", 6), headers=idem())
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"].endswith("/too-many-unpaid-orders") and body["skus"] == ["HOARD-1"]
    assert body["max_unpaid_units_per_item"] == 20
    await login(customer())  # everyone else still finds the rest in stock
    assert (await client.post("/v1/orders", json=_order("HOARD-1", 20), headers=idem())).status_code == 201


async def test_unpaid_orders_and_units_are_capped_per_customer_within_a_batch_too(
    app: FastAPI, client: AsyncClient, shop: Catalog, login: Login, db: Database
) -> None:
    for sku in ("CAP-A", "CAP-B", "CAP-C", "CAP-D"):
        await shop.product(sku=sku, stock=100)
    me = await login(customer())
    assert me is not None
    batcher: OrderBatcher = app.state.order_batcher
    before = metrics.text()
    async with batcher.paused():  # three orders at once: one batch, counted in turn
        tasks = [
            asyncio.create_task(client.post("/v1/orders", json=_order(sku, 5), headers=idem()))
            for sku in ("CAP-A", "CAP-B", "CAP-C")
        ]
        for _ in range(2000):
            if batcher.queued >= 3:
                break
            await asyncio.sleep(0.005)
    answers = await asyncio.gather(*tasks)
    assert sorted(r.status_code for r in answers) == [201, 201, 409], [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 409)
    assert refused.json()["unpaid_orders"] == 2 and refused.json()["max_unpaid_orders"] == 2

    placed = [r.json()["id"] for r in answers if r.status_code == 201]
    r = await client.post(f"/v1/orders/{placed[0]}/transitions", json={"status": "cancelled"}, headers=idem())
    assert r.status_code == 200, r.text
    async with db.session() as session:
        await orders.mark_paid(session, order_id=uuid.UUID(placed[1]), reference="pay_test")
    # Both slots are free again; the units cap (30) still counts what a batch accepts.
    r = await client.post("/v1/orders", json=_order("CAP-D", 20), headers=idem())
    assert r.status_code == 201, r.text
    r = await client.post("/v1/orders", json=_order("CAP-A", 11), headers=idem())
    assert r.status_code == 409 and "30 units" in r.json()["detail"], r.text
    assert (await client.post("/v1/orders", json=_order("CAP-A", 10), headers=idem())).status_code == 201

    after = metrics.text()
    assert (
        _metric(after, "kirana_orders_unpaid_cap_refusals_total")
        - _metric(before, "kirana_orders_unpaid_cap_refusals_total")
        == 2
    )
    closed = '{how="cancelled"}'
    assert (
        _metric(after, "kirana_orders_closed_unpaid_total", closed)
        - _metric(before, "kirana_orders_closed_unpaid_total", closed)
        == 1
    )
    assert (
        _metric(after, "kirana_order_placed_to_paid_seconds_count")
        - _metric(before, "kirana_order_placed_to_paid_seconds_count")
        == 1
    )
