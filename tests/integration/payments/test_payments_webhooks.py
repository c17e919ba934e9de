"""Razorpay webhooks: signatures (with rotation), dedupe, any order, unknown orders, and the
cases that lose money elsewhere (lapsed orders, mismatched amounts, paying twice)."""

from __future__ import annotations

import json

from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api import metrics
from kirana.api.devrazorpay.app import Delivery
from kirana.api.devrazorpay.server import FakeServer
from kirana.api.devrazorpay.store import sign
from kirana.api.payments import scheduled as flows
from tests.integration.commerce.conftest import Catalog, customer
from tests.integration.payments.conftest import OLD_WEBHOOK_SECRET, deliver, pay, place, start
from tests.integration.payments.test_payments_checkout import q


def resigned(d: Delivery, secret: str, event_id: str | None = None) -> Delivery:
    headers = {**d.headers, "X-Razorpay-Signature": sign(secret, d.body.decode())}
    if event_id:
        headers["X-Razorpay-Event-Id"] = event_id
    return Delivery(event_id or d.event_id, d.event, d.body, headers)


async def test_bad_signature_is_400_audited_counted_and_changes_nothing(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="SUGAR-1KG", price=5_000, stock=5)
    await login(customer())
    co = await start(client, (await place(client, "SUGAR-1KG"))["id"])
    pay(fake, co["razorpay_order_id"])
    good = fake.fake.deliveries()
    bad = resigned(good[0], "not-the-secret")
    r = await client.post("/v1/webhooks/razorpay", content=bad.body, headers=bad.headers)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/webhook-signature-invalid")
    # The same bytes re-serialised (spaces after separators) no longer match: the raw body counts.
    reserialised = json.dumps(json.loads(good[0].body)).encode()
    r = await client.post("/v1/webhooks/razorpay", content=reserialised, headers={**good[0].headers})
    assert r.status_code == 400
    assert q(database_url, "SELECT count(*) FROM payment_webhook_events") == [(0,)]
    assert q(database_url, "SELECT count(*) FROM audit_log WHERE action = 'payments.webhook_rejected'") == [
        (2,)
    ]
    exposed = metrics.text()
    assert 'kirana_webhook_received_total{outcome="bad_signature"}' in exposed
    # During a rotation the previous secret still verifies.
    old = resigned(good[0], OLD_WEBHOOK_SECRET)
    assert (
        await client.post("/v1/webhooks/razorpay", content=old.body, headers=old.headers)
    ).status_code == 200


async def test_duplicates_and_any_order_are_harmless(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="ATTA-5KG", price=25_000, stock=5)
    await login(customer())
    order = await place(client, "ATTA-5KG")
    co = await start(client, order["id"])
    answer = pay(fake, co["razorpay_order_id"])
    authorized = fake.fake.deliveries()
    fake.account.capture(answer["razorpay_payment_id"], {"amount": co["amount_paise"]})
    captured = fake.fake.deliveries()  # payment.captured, order.paid
    late_failed = resigned(
        Delivery(
            "x",
            "payment.failed",
            json.dumps(
                {
                    "entity": "event",
                    "event": "payment.failed",
                    "contains": ["payment"],
                    "payload": {
                        "payment": {
                            "entity": {
                                **fake.account.payments[answer["razorpay_payment_id"]],
                                "status": "failed",
                                "error_reason": "payment_failed",
                            }
                        }
                    },
                }
            ).encode(),
            dict(captured[0].headers),
        ),
        "whsec-current-0123456789",
        event_id="evt_latefailed0001",
    )
    # Captured before authorized, each three times, then a late failure.
    codes = await deliver(client, captured * 3 + authorized * 3 + [late_failed])
    assert set(codes) == {200}
    assert q(database_url, "SELECT count(*) FROM payment_webhook_events") == [(4,)]
    await flows.process_webhooks(app.state.db, app.state.payments_gateway)
    assert q(database_url, "SELECT status FROM orders") == [("paid",)]
    assert q(database_url, "SELECT status FROM payments") == [("captured",)]
    assert q(database_url, "SELECT count(*) FROM payment_ledger WHERE kind = 'captured'") == [(1,)]
    assert q(database_url, "SELECT count(*) FROM payment_webhook_events WHERE processed_at IS NULL") == [(0,)]


async def test_events_for_unknown_orders_are_kept_and_flagged(
    client: AsyncClient, app: FastAPI, fake: FakeServer, database_url: str
) -> None:
    rp = fake.account.create_order({"amount": 10_000, "currency": "INR", "receipt": "elsewhere"})
    fake.account.pay(rp["id"], method="card")
    await deliver(client, fake.fake.deliveries())
    await flows.process_webhooks(app.state.db, app.state.payments_gateway)
    assert q(database_url, "SELECT event, flag FROM payment_webhook_events") == [
        ("payment.authorized", "unknown_order")
    ]
    assert q(database_url, "SELECT flag, order_id FROM payments") == [("unknown_order", None)]
    assert q(database_url, "SELECT count(*) FROM payment_ledger") == [(0,)]


async def test_captured_after_expiry_takes_stock_again_or_refunds(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="LAST-ONE", price=9_900, stock=1)
    await login(customer())
    first = await place(client, "LAST-ONE")
    co = await start(client, first["id"])
    q(database_url, "UPDATE orders SET reservation_expires_at = now() - interval '1 minute'")
    from kirana.api.orders import scheduled as order_jobs

    assert await order_jobs.expire_reservations(app.state.db) == 1
    answer = pay(fake, co["razorpay_order_id"])
    r = await client.post("/v1/payments/verify", json=answer)
    assert r.status_code == 200 and r.json()["order_status"] == "paid"  # the stock was still there
    assert q(database_url, "SELECT stock FROM catalog_variants") == [(0,)]

    await shop.product(sku="GONE", price=9_900, stock=1)
    second = await place(client, "GONE")
    co2 = await start(client, second["id"])
    q(
        database_url,
        "UPDATE orders SET reservation_expires_at = now() - interval '1 minute' WHERE id = %s",
        second["id"],
    )
    await order_jobs.expire_reservations(app.state.db)
    q(database_url, "UPDATE catalog_variants SET stock = 0 WHERE sku = 'GONE'")  # sold to someone else
    answer2 = pay(fake, co2["razorpay_order_id"])
    r = await client.post("/v1/payments/verify", json=answer2)
    assert r.status_code == 200, r.text
    assert r.json()["order_status"] == "expired" and r.json()["refunded_paise"] == second["total_paise"]
    assert fake.account.payments[answer2["razorpay_payment_id"]]["amount_refunded"] == second["total_paise"]
    assert q(database_url, "SELECT count(*) FROM outbox_events WHERE topic = 'payment.auto_refunded'") == [
        (1,)
    ]


async def test_amount_mismatch_is_flagged_not_paid(
    client: AsyncClient, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="HONEY", price=30_000, stock=5)
    await login(customer())
    order = await place(client, "HONEY")
    co = await start(client, order["id"])
    answer = pay(fake, co["razorpay_order_id"], amount=100)
    r = await client.post("/v1/payments/verify", json=answer)
    assert r.status_code == 200
    assert r.json()["order_status"] == "pending_payment" and r.json()["paid_paise"] == 0
    assert q(database_url, "SELECT flag FROM payments") == [("amount_mismatch",)]
    assert fake.account.payments[answer["razorpay_payment_id"]]["status"] == "authorized"  # never captured
    assert "kirana_payment_mismatch_total 1.0" in metrics.text()


async def test_paying_twice_refunds_the_second(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="JAM", price=12_000, stock=5)
    await login(customer())
    order = await place(client, "JAM")
    co = await start(client, order["id"])
    one, two = pay(fake, co["razorpay_order_id"]), pay(fake, co["razorpay_order_id"])
    assert (await client.post("/v1/payments/verify", json=one)).json()["order_status"] == "paid"
    r = await client.post("/v1/payments/verify", json=two)
    assert r.status_code == 200 and r.json()["payment_status"] == "refunded"
    await deliver(client, fake.fake.deliveries())
    await flows.process_webhooks(app.state.db, app.state.payments_gateway)  # refund webhooks: no double entry
    assert r.json()["paid_paise"] == order["total_paise"]
    assert len(fake.account.refunds) == 1
    assert q(database_url, "SELECT count(*) FROM payment_ledger WHERE kind = 'refunded'") == [(1,)]
    assert q(database_url, "SELECT status FROM orders") == [("paid",)]
    # The refunded payment's late `payment.authorized` is settled, not retried for ever: an event
    # left due would hold back every later webhook.
    assert q(database_url, "SELECT count(*) FROM payment_webhook_events WHERE processed_at IS NULL") == [(0,)]


async def test_an_effect_razorpay_refuses_settles_its_event_flagged_and_holds_back_nothing(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="SALT", price=2_000, stock=5)
    await login(customer())
    order = await place(client, "SALT")
    co = await start(client, order["id"])
    lapsed = pay(fake, co["razorpay_order_id"])["razorpay_payment_id"]
    authorized = fake.fake.deliveries()
    # Razorpay let the authorization lapse before the shop captured it: capture is refused for good.
    fake.account.payments[lapsed]["status"] = "failed"
    pay(fake, co["razorpay_order_id"])  # the customer pays again; this one can be captured
    later = fake.fake.deliveries()
    await deliver(client, authorized + later)
    await flows.process_webhooks(app.state.db, app.state.payments_gateway)
    rows = q(
        database_url,
        "SELECT flag, outcome LIKE 'refused %%', processed_at IS NOT NULL FROM payment_webhook_events"
        " ORDER BY received_at",
    )
    assert rows[0] == ("gateway_refused", True, True)
    assert all(done for *_, done in rows)  # nothing left due behind it
    assert q(database_url, "SELECT status FROM orders") == [("paid",)]
    # The refused effect was rolled back whole: no ledger row, no audit entry for it.
    assert q(database_url, "SELECT count(*) FROM payment_ledger WHERE razorpay_payment_id = %s", lapsed) == [
        (0,)
    ]
    assert q(database_url, "SELECT count(*) FROM audit_log WHERE action = 'payments.captured'") == [(1,)]
