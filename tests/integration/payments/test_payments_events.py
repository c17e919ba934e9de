"""What customers hear about their money: `payment.*` outbox events reach their real-time
channel (`user:<id>:orders`), and an automatic refund sends them a message through the workers'
notification path, once."""

from __future__ import annotations

import json

from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api.devrazorpay.server import FakeServer
from kirana.api.payments import notices
from kirana.api.realtime import broker, channels
from tests.integration.access.helpers import deliver_events
from tests.integration.commerce.conftest import Catalog, customer
from tests.integration.payments.conftest import pay, place, start
from tests.integration.payments.test_payments_checkout import q


async def test_paying_twice_tells_the_customer_of_the_refund_once_and_live(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="HONEY", price=25_000, stock=5)
    who = customer()
    await login(who)
    order = await place(client, "HONEY")
    co = await start(client, order["id"])
    one, two = pay(fake, co["razorpay_order_id"]), pay(fake, co["razorpay_order_id"])
    assert (await client.post("/v1/payments/verify", json=one)).json()["order_status"] == "paid"
    assert (await client.post("/v1/payments/verify", json=two)).json()["payment_status"] == "refunded"

    sent = app.state.access.notifier.email.sent
    before = len(sent)
    assert await deliver_events(app) >= 1
    told = list(sent)[before:]
    assert [m.to for m in told] == [f"{who.user_id.hex}@test.invalid"]
    assert f"₹{order['total_paise'] // 100:,}.00" in told[0].text and str(order["number"]) in told[0].text
    assert "already been paid" in told[0].text
    assert q(database_url, "SELECT count(*) FROM audit_log WHERE action = 'payments.refund_notified'") == [
        (1,)
    ]
    # A redelivered event tells nobody twice.
    payload = q(database_url, "SELECT payload FROM outbox_events WHERE topic = 'payment.auto_refunded'")[0][0]
    assert isinstance(payload, dict)
    assert await notices.auto_refunded(app.state.db, app.state.access.notifier, payload=payload) is False
    assert len(sent) == before + 1

    # The same events reach the customer's live channel, as the hub routes them.
    snap = await broker.snapshot(app.state.redis, channels.user_orders(who.user_id))
    types = [json.loads(body)["type"] for _, body in snap.history]
    assert {"payment.result", "payment.refunded", "payment.refund"} <= set(types)
