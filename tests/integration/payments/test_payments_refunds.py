"""Staff refunds: full and partial, capped at captured minus refunded (and pending), step-up
required, idempotent with the shop's key and Razorpay's; recorded before Razorpay is asked and
settled after, their status following Razorpay (pending, processed, failed); stock back on a
returned delivery."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api.devrazorpay.server import FakeServer
from kirana.api.payments import flows as flows_mod
from kirana.api.payments import scheduled as flows
from tests.integration.commerce.conftest import STAFF, Catalog, customer, staff
from tests.integration.payments.conftest import deliver, pay, place, start
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


async def _paid_order(client: AsyncClient, login, shop: Catalog, fake: FakeServer, sku: str) -> dict:
    await shop.product(sku=sku, price=40_000, stock=5)
    await login(customer())
    order = await place(client, sku)
    co = await start(client, order["id"])
    r = await client.post("/v1/payments/verify", json=pay(fake, co["razorpay_order_id"]))
    assert r.status_code == 200
    return order


async def test_refund_status_follows_razorpay_pending_then_processed_or_failed(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    order = await _paid_order(client, login, shop, fake, "GHEE")
    fake.fake.deliveries()  # the payment's own webhooks are not the point here
    fake.account.refund_outcome = "pending"  # the bank takes its time, as with real refunds
    path = f"/v1/orders/{order['id']}/payments/refunds"
    await login(staff(permissions=REFUNDER))
    r = await client.post(path, json={"amount_paise": 10_000}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["refunded_paise"], body["pending_paise"], body["refund_state"]) == (0, 10_000, "none")
    assert [x["status"] for x in body["refunds"]] == ["pending"]
    # The cap counts the pending refund: what is left is the total minus it.
    r = await client.post(
        path, json={"amount_paise": order["total_paise"]}, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 422 and r.json()["refundable_paise"] == order["total_paise"] - 10_000
    assert q(database_url, "SELECT count(*) FROM payment_ledger WHERE kind = 'refunded'") == [(0,)]

    first = body["refunds"][0]["razorpay_refund_id"]
    fake.account.settle_refund(first, processed=True)
    deliveries = fake.fake.deliveries()
    await deliver(client, deliveries + deliveries)  # refund.created, refund.processed, twice
    await flows.process_webhooks(app.state.db, app.state.payments_gateway)
    assert q(database_url, "SELECT status FROM payment_refunds") == [("processed",)]
    assert q(database_url, "SELECT amount_paise FROM payment_ledger WHERE kind = 'refunded'") == [(10_000,)]

    # A second refund that fails at the bank frees its amount again, and the ledger keeps out.
    r = await client.post(path, json={"amount_paise": 5_000}, headers={"Idempotency-Key": str(uuid.uuid4())})
    second = r.json()["refunds"][-1]["razorpay_refund_id"]
    fake.account.settle_refund(second, processed=False)
    await deliver(client, fake.fake.deliveries())
    await flows.process_webhooks(app.state.db, app.state.payments_gateway)
    assert q(database_url, "SELECT status FROM payment_refunds ORDER BY created_at") == [
        ("processed",),
        ("failed",),
    ]
    assert q(database_url, "SELECT count(*) FROM payment_ledger WHERE kind = 'refunded'") == [(1,)]
    assert q(database_url, "SELECT flag FROM payment_webhook_events WHERE event = 'refund.failed'") == [
        ("refund_failed",)
    ]
    r = await client.post(path, json={}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 200 and r.json()["pending_paise"] == order["total_paise"] - 10_000
    statuses = q(
        database_url,
        "SELECT payload->>'status' FROM outbox_events WHERE topic = 'payment.refund_updated' ORDER BY id",
    )
    assert statuses == [("processed",), ("failed",)]
    actions = q(
        database_url, "SELECT action FROM audit_log WHERE action LIKE 'payments.refund%%' ORDER BY seq"
    )
    assert [a for (a,) in actions] == [
        "payments.refund_requested",
        "payments.refunded",
        "payments.refund_requested",
        "payments.refund_failed",
        "payments.refund_requested",
    ]


async def test_a_refund_whose_answer_is_lost_is_settled_once_by_retry_or_reconciler(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    order = await _paid_order(client, login, shop, fake, "PANEER")
    path = f"/v1/orders/{order['id']}/payments/refunds"
    await login(staff(permissions=REFUNDER))
    fake.fake.faults.delay_s = 3.0  # Razorpay refunds, but its answer comes after the 2 s timeout
    key = {"Idempotency-Key": str(uuid.uuid4())}
    r = await client.post(path, json={"amount_paise": 10_000}, headers=key)
    assert r.status_code == 503 and r.headers["retry-after"] == "7"
    fake.fake.faults.delay_s = 0
    assert len(fake.account.refunds) == 1  # the money moved at Razorpay...
    # ... and the shop has it recorded as pending, no transaction was open meanwhile.
    assert q(database_url, "SELECT status, razorpay_refund_id FROM payment_refunds") == [("pending", None)]
    assert q(database_url, "SELECT count(*) FROM payment_ledger WHERE kind = 'refunded'") == [(0,)]

    # The reconciler asks again with the same X-Refund-Idempotency: the same refund, settled.
    flows_mod.SETTLE_AFTER = timedelta(0)
    try:
        assert await flows_mod.settle_pending(app.state.db, app.state.payments_gateway) == 1
    finally:
        flows_mod.SETTLE_AFTER = timedelta(seconds=30)
    assert len(fake.account.refunds) == 1
    assert q(database_url, "SELECT status FROM payment_refunds") == [("processed",)]
    # The staff member's retry with the same key now answers from what was settled.
    r = await client.post(path, json={"amount_paise": 10_000}, headers=key)
    assert r.status_code == 200 and r.json()["refunded_paise"] == 10_000
    assert len(fake.account.refunds) == 1
    assert q(database_url, "SELECT sum(amount_paise) FROM payment_ledger WHERE kind = 'refunded'") == [
        (10_000,)
    ]


async def test_a_refund_razorpay_refuses_is_failed_and_409(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    order = await _paid_order(client, login, shop, fake, "CURD")
    payment_id = next(iter(fake.account.payments))
    fake.account.refund(payment_id, {}, None)  # refunded in Razorpay's dashboard; no webhook yet
    await login(staff(permissions=REFUNDER))
    r = await client.post(
        f"/v1/orders/{order['id']}/payments/refunds", json={}, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 409 and r.json()["type"].endswith("/refund-refused")
    assert q(database_url, "SELECT status, failure_reason IS NOT NULL FROM payment_refunds") == [
        ("failed", True)
    ]
    assert q(database_url, "SELECT count(*) FROM audit_log WHERE action = 'payments.refund_failed'") == [(1,)]
    # The dashboard refund's webhooks then bring it into the shop's books, once.
    await deliver(client, fake.fake.deliveries())
    await flows.process_webhooks(app.state.db, app.state.payments_gateway)
    assert q(database_url, "SELECT source, status FROM payment_refunds ORDER BY created_at") == [
        ("staff", "failed"),
        ("razorpay", "processed"),
    ]
    assert q(database_url, "SELECT sum(amount_paise) FROM payment_ledger WHERE kind = 'refunded'") == [
        (order["total_paise"],)
    ]


async def test_a_full_refund_of_a_returned_delivery_puts_the_stock_back(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    order = await _paid_order(client, login, shop, fake, "KETTLE")
    assert q(database_url, "SELECT stock FROM catalog_variants WHERE sku = 'KETTLE'") == [(4,)]
    q(database_url, "UPDATE orders SET status = 'delivered' WHERE id = %s", order["id"])
    await login(staff(permissions=REFUNDER))
    path = f"/v1/orders/{order['id']}/payments/refunds"
    r = await client.post(
        path, json={"restock": True, "reason": "returned"}, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 200 and r.json()["order_status"] == "refunded"
    assert r.json()["refund_state"] == "full"
    assert q(database_url, "SELECT stock FROM catalog_variants WHERE sku = 'KETTLE'") == [(5,)]
    assert q(database_url, "SELECT count(*) FROM audit_log WHERE action = 'payments.refund_restocked'") == [
        (1,)
    ]


async def test_a_refund_key_belongs_to_its_staff_member_and_order(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    """Two staff members who happen to send the same Idempotency-Key each get their refund; a
    key whose first refund never got an answer, sent for another order, refunds that order
    (not the first one again); and a key answered for one order is refused for another before
    anything is asked of Razorpay."""
    first = await _paid_order(client, login, shop, fake, "ATTA")
    second = await _paid_order(client, login, shop, fake, "DAL")
    path = "/v1/orders/{}/payments/refunds"
    key = {"Idempotency-Key": str(uuid.uuid4())}

    await login(staff(permissions=REFUNDER))
    r = await client.post(path.format(first["id"]), json={"amount_paise": 5_000}, headers=key)
    assert r.status_code == 200 and r.json()["refunded_paise"] == 5_000
    await login(staff(permissions=REFUNDER))  # a colleague, same key by chance
    r = await client.post(path.format(first["id"]), json={"amount_paise": 5_000}, headers=key)
    assert r.status_code == 200 and r.json()["refunded_paise"] == 10_000, r.text
    assert len(fake.account.refunds) == 2

    await login(staff(permissions=REFUNDER))
    lost = {"Idempotency-Key": str(uuid.uuid4())}
    fake.fake.faults.delay_s = 3.0  # Razorpay refunds, its answer comes after the timeout
    r = await client.post(path.format(first["id"]), json={"amount_paise": 1_000}, headers=lost)
    assert r.status_code == 503
    fake.fake.faults.delay_s = 0
    r = await client.post(path.format(second["id"]), json={"amount_paise": 2_000}, headers=lost)
    assert r.status_code == 200 and r.json()["refunded_paise"] == 2_000, r.text
    rows = q(
        database_url,
        "SELECT order_id::text, amount_paise FROM payment_refunds WHERE amount_paise IN (1000, 2000) "
        "ORDER BY amount_paise",
    )
    assert rows == [(first["id"], 1_000), (second["id"], 2_000)]
    asked = len(fake.account.refunds)

    r = await client.post(path.format(first["id"]), json={"amount_paise": 2_000}, headers=lost)
    assert r.status_code == 422 and r.json()["type"].endswith("/idempotency-key-reused"), r.text
    assert len(fake.account.refunds) == asked  # refused before Razorpay was asked
