"""Loyalty points pay part of an order: the Razorpay order is for the total less the points'
value, the ledger counts what was paid in money, and the points are fixed once paying starts
(a Razorpay order is made once, for what is due then). Cash on delivery collects what is due."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api.db.engine import Database
from kirana.api.devrazorpay.server import FakeServer
from kirana.api.loyalty import service as loyalty
from kirana.api.payments import ledger_check
from kirana.api.settings import Settings
from tests.integration.commerce.conftest import Catalog, customer
from tests.integration.payments.conftest import pay, place, start
from tests.integration.payments.test_payments_checkout import q
from tests.integration.payments.test_payments_cod import ADDRESS


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"loyalty_redeem_max_percent": 20})  # off by default


async def _with_points(login, db: Database, points: int) -> None:
    owner = await login(customer())
    async with db.session() as s:
        await loyalty.post(s, user_id=owner.user_id, kind="adjust", points=points, source="test:grant")


async def _redeem(client: AsyncClient, order_id: str, points: int) -> dict[str, Any]:
    r = await client.post("/v1/loyalty/redemptions", json={"order_id": order_id, "points": points})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_razorpay_is_asked_for_the_total_less_the_points(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, db: Database, database_url: str
) -> None:
    await shop.product(sku="GHEE-1L", price=60_000, stock=5)
    await _with_points(login, db, 5_000)
    order = await place(client, "GHEE-1L")
    total = order["total_paise"]
    assert (order["discount_paise"], order["due_paise"]) == (0, total)

    held = await _redeem(client, order["id"], 1_000)  # 1,000 points at 10 paise: ₹100 off
    assert held["value_paise"] == 10_000
    seen = (await client.get(f"/v1/orders/{order['id']}")).json()
    assert (seen["discount_paise"], seen["due_paise"]) == (10_000, total - 10_000)

    co = await start(client, order["id"])
    assert co["amount_paise"] == total - 10_000
    assert fake.account.orders[co["razorpay_order_id"]]["amount"] == total - 10_000

    # Paying has started: the points on the order are fixed, either way.
    r = await client.delete(f"/v1/loyalty/redemptions/{order['id']}")
    assert r.status_code == 409 and r.json()["type"].endswith("/redemption-closed"), r.text
    again = await client.post("/v1/loyalty/redemptions", json={"order_id": order["id"], "points": 1_000})
    assert again.status_code == 201 and again.json()["value_paise"] == 10_000  # the same hold

    r = await client.post("/v1/payments/verify", json=pay(fake, co["razorpay_order_id"]))
    assert r.status_code == 200, r.text
    assert q(database_url, f"SELECT status FROM orders WHERE id = '{order['id']}'") == [("paid",)]
    captured = "SELECT sum(amount_paise) FROM payment_ledger WHERE kind = 'captured' AND order_id = %s"
    assert q(database_url, captured, order["id"]) == [(total - 10_000,)]
    async with db.session() as s:
        assert await ledger_check.verify_ledger(s) == []


async def test_points_go_on_and_come_off_before_paying_starts(
    client: AsyncClient, login, shop: Catalog, fake: FakeServer, db: Database
) -> None:
    await shop.product(sku="SALT", price=2_000, stock=5)
    await _with_points(login, db, 10_000)
    order = await place(client, "SALT")
    total = order["total_paise"]
    await _redeem(client, order["id"], 40)
    assert (await client.delete(f"/v1/loyalty/redemptions/{order['id']}")).status_code == 204
    seen = (await client.get(f"/v1/orders/{order['id']}")).json()
    assert (seen["discount_paise"], seen["due_paise"]) == (0, total)
    co = await start(client, order["id"])
    assert co["amount_paise"] == total
    # Once paying has started, no points go on either.
    other = await place(client, "SALT")
    await start(client, other["id"])
    r = await client.post("/v1/loyalty/redemptions", json={"order_id": other["id"], "points": 10})
    assert r.status_code == 409 and r.json()["type"].endswith("/redemption-closed"), r.text


async def test_cash_on_delivery_collects_what_is_due(
    client: AsyncClient, login, shop: Catalog, db: Database
) -> None:
    await shop.product(sku="ATTA-10KG", price=50_000, stock=5)
    await _with_points(login, db, 5_000)
    r = await client.post(
        "/v1/orders",
        json={"lines": [{"sku": "ATTA-10KG", "quantity": 1}], "shipping_address": ADDRESS},
        headers={"Idempotency-Key": "0d3c2b1a-0000-4000-8000-000000000043"},
    )
    assert r.status_code == 201, r.text
    order = r.json()
    await _redeem(client, order["id"], 500)
    r = await client.post(f"/v1/orders/{order['id']}/payments/cod")
    assert r.status_code == 201, r.text
    assert r.json()["amount_paise"] == order["total_paise"] - 5_000
