"""Staff refunds: full and partial, capped at captured minus refunded, step-up required,
idempotent with the shop's key and Razorpay's."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api.devrazorpay.server import FakeServer
from tests.integration.commerce.conftest import STAFF, Catalog, customer, staff
from tests.integration.payments.conftest import pay, place, start
from tests.integration.payments.test_payments_checkout import q

REFUNDER = STAFF | {"payments:refund"}


async def test_partial_then_full_refund_never_above_captured(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="BASMATI", price=50_000, stock=5)
    await login(customer())
    order = await place(client, "BASMATI")
    co = await start(client, order["id"])
    assert (
        await client.post("/v1/payments/verify", json=pay(fake, co["razorpay_order_id"]))
    ).status_code == 200
    total = order["total_paise"]
    path = f"/v1/orders/{order['id']}/payments/refunds"

    await login(staff(permissions=REFUNDER, stepped_up=False))
    r = await client.post(path, json={"amount_paise": 10_000}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 401  # step-up required
    await login(staff(permissions=STAFF))
    r = await client.post(path, json={"amount_paise": 10_000}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 403

    await login(staff(permissions=REFUNDER))
    key = {"Idempotency-Key": str(uuid.uuid4())}
    r = await client.post(path, json={"amount_paise": 10_000, "reason": "one bag torn"}, headers=key)
    assert r.status_code == 200, r.text
    assert r.json()["refunded_paise"] == 10_000 and r.json()["order_status"] == "paid"
    again = await client.post(path, json={"amount_paise": 10_000, "reason": "one bag torn"}, headers=key)
    assert again.status_code == 200 and again.json()["refunded_paise"] == 10_000  # replayed, not repeated
    assert len(fake.account.refunds) == 1

    r = await client.post(path, json={"amount_paise": total}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 422 and r.json()["type"].endswith("/refund-exceeds-captured")
    assert r.json()["refundable_paise"] == total - 10_000

    r = await client.post(path, json={}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 200 and r.json()["paid_paise"] == 0
    assert sum(x["amount"] for x in fake.account.refunds.values()) == total
    r = await client.post(path, json={}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 409  # nothing left
    assert q(database_url, "SELECT count(*) FROM audit_log WHERE action = 'payments.refunded'") == [(2,)]
