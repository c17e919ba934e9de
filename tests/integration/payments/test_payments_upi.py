"""UPI: intent link and QR, Collect only behind the setting, the per-transaction limit checked
before Razorpay is asked, failure reasons as stable problem types."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api.devrazorpay.server import FakeServer
from kirana.api.payments import scheduled as flows
from tests.integration.commerce.conftest import Catalog, customer
from tests.integration.payments.conftest import deliver, place
from tests.integration.payments.test_payments_checkout import q


async def test_intent_pays_by_webhook_once_the_app_approves(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="UPI-1", price=20_000, stock=5)
    await login(customer())
    order = await place(client, "UPI-1")
    r = await client.post(f"/v1/orders/{order['id']}/payments/upi", json={})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (
        body["intent_url"].startswith("upi://pay?")
        and f"am={order['total_paise'] / 100:.2f}" in body["intent_url"]
    )
    assert body["qr_svg"].lstrip().startswith("<?xml") or "<svg" in body["qr_svg"]
    fake.account.complete_intent(body["razorpay_payment_id"], approved=True)  # the customer's app
    await deliver(client, fake.fake.deliveries())
    await flows.process_webhooks(app.state.db, app.state.payments_gateway)
    assert q(database_url, "SELECT status FROM orders") == [("paid",)]


async def test_collect_is_refused_unless_enabled(
    client: AsyncClient, login, shop: Catalog, fake: FakeServer
) -> None:
    await shop.product(sku="UPI-2", price=20_000, stock=5)
    await login(customer())
    order = await place(client, "UPI-2")
    r = await client.post(
        f"/v1/orders/{order['id']}/payments/upi", json={"flow": "collect", "vpa": "ravi@okaxis"}
    )
    assert r.status_code == 409 and r.json()["type"].endswith("/upi-collect-unavailable")
    assert fake.account.payments == {}


async def test_the_upi_limit_is_enforced_before_razorpay_is_asked(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer
) -> None:
    await shop.product(sku="TV", price=2_00_000_00, stock=5)  # ₹2,00,000
    await login(customer())
    order = await place(client, "TV")
    r = await client.post(f"/v1/orders/{order['id']}/payments/upi", json={})
    assert r.status_code == 422 and r.json()["type"].endswith("/upi-limit-exceeded")
    assert r.json()["limit_paise"] == 1_00_000_00
    assert fake.account.orders == {} and fake.account.payments == {}
