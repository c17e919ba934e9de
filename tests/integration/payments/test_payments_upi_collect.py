"""UPI Collect for a merchant still allowed it (`KIRANA_PAYMENTS_UPI_COLLECT_ENABLED`): the VPA is
validated first, the request approved or declined in the customer's app reaches the order by
webhook, and failures come back as stable problem types."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api.devrazorpay.server import FakeServer
from kirana.api.payments import scheduled as flows
from kirana.api.settings import Settings
from tests.integration.commerce.conftest import Catalog, customer
from tests.integration.payments.conftest import deliver, place, start
from tests.integration.payments.test_payments_checkout import q


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"payments_upi_collect_enabled": True})


async def test_collect_validates_the_vpa_then_pays_by_webhook_or_fails_as_declined(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="UPI-C", price=30_000, stock=5)
    await login(customer())
    paid, declined = await place(client, "UPI-C"), await place(client, "UPI-C")
    assert "upi_collect" in (await start(client, paid["id"]))["methods"]

    r = await client.post(
        f"/v1/orders/{paid['id']}/payments/upi", json={"flow": "collect", "vpa": "invalid@okaxis"}
    )
    assert r.status_code == 422 and r.json()["type"].endswith("/upi-vpa-invalid")
    assert fake.account.payments == {}  # validated before any request reached the customer

    r = await client.post(
        f"/v1/orders/{paid['id']}/payments/upi", json={"flow": "collect", "vpa": "ravi@okaxis"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["flow"] == "collect" and r.json()["intent_url"] is None
    assert fake.account.payments[r.json()["razorpay_payment_id"]]["vpa"] == "ravi@okaxis"

    r = await client.post(
        f"/v1/orders/{declined['id']}/payments/upi", json={"flow": "collect", "vpa": "decline.ravi@okaxis"}
    )
    assert r.status_code == 201
    await deliver(client, fake.fake.deliveries())
    await flows.process_webhooks(app.state.db, app.state.payments_gateway)
    assert q(database_url, "SELECT id::text, status FROM orders ORDER BY number") == [
        (paid["id"], "paid"),
        (declined["id"], "pending_payment"),
    ]
    assert q(
        database_url, "SELECT status, failure_reason FROM payments WHERE order_id = %s", declined["id"]
    ) == [("failed", "payment_declined")]
    assert q(database_url, "SELECT topic FROM outbox_events WHERE topic LIKE 'payment.%%' ORDER BY id") == [
        ("payment.succeeded",),
        ("payment.failed",),
    ]
