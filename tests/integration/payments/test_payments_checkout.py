"""Paying an order through the fake Razorpay and the real SDK: checkout, verify, the ledger."""

from __future__ import annotations

import asyncio

import psycopg
from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api.devrazorpay.server import FakeServer
from kirana.api.payments import scheduled as flows
from tests.integration.commerce.conftest import Catalog, customer
from tests.integration.payments.conftest import deliver, pay, place, start


def q(database_url: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        cur = conn.execute(sql, args)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


async def test_checkout_is_created_once_for_the_server_total(
    client: AsyncClient, login, shop: Catalog, fake: FakeServer
) -> None:
    await shop.product(sku="RICE-5KG", price=45_000, stock=5)
    await login(customer())
    order = await place(client, "RICE-5KG", 2)
    first = await start(client, order["id"])
    again = await start(client, order["id"])
    assert again["razorpay_order_id"] == first["razorpay_order_id"]
    assert first["amount_paise"] == order["total_paise"]
    assert first["key_id"] == fake.account.key_id and first["currency"] == "INR"
    rp = fake.account.orders[first["razorpay_order_id"]]
    assert rp["receipt"] == str(order["number"]) and rp["notes"] == {"shop_order_id": order["id"]}
    assert len(fake.account.orders) == 1
    await login(customer())  # someone else's order is not found
    assert (await client.post(f"/v1/orders/{order['id']}/payments")).status_code == 404


async def test_verify_captures_and_pays_exactly_once(
    client: AsyncClient, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="DAL-1KG", price=15_000, stock=5)
    await login(customer())
    order = await place(client, "DAL-1KG")
    co = await start(client, order["id"])
    answer = pay(fake, co["razorpay_order_id"])
    r = await client.post("/v1/payments/verify", json=answer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["order_status"] == "paid" and body["payment_status"] == "captured"
    assert body["paid_paise"] == order["total_paise"]
    assert fake.account.payments[answer["razorpay_payment_id"]]["status"] == "captured"
    r2 = await client.post("/v1/payments/verify", json=answer)  # a retried verify changes nothing
    assert r2.status_code == 200 and r2.json()["paid_paise"] == order["total_paise"]
    kinds = q(database_url, "SELECT kind, amount_paise FROM payment_ledger ORDER BY id")
    assert [k for k, _ in kinds] == ["captured", "fee"]
    assert q(database_url, "SELECT count(*) FROM order_events WHERE to_status = 'paid'") == [(1,)]
    assert q(database_url, "SELECT count(*) FROM audit_log WHERE action = 'payments.captured'") == [(1,)]
    # A new checkout for a paid order is refused.
    assert (await client.post(f"/v1/orders/{order['id']}/payments")).status_code == 409


async def test_a_forged_signature_or_foreign_payment_is_refused(
    client: AsyncClient, login, shop: Catalog, fake: FakeServer
) -> None:
    await shop.product(sku="TEA-250G", price=20_000, stock=5)
    await login(customer())
    co = await start(client, (await place(client, "TEA-250G"))["id"])
    answer = pay(fake, co["razorpay_order_id"])
    forged = {**answer, "razorpay_signature": "0" * 64}
    r = await client.post("/v1/payments/verify", json=forged)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/payment-signature-invalid")
    assert fake.account.payments[answer["razorpay_payment_id"]]["status"] == "authorized"  # not captured


async def test_declined_payment_is_a_problem_the_client_can_act_on(
    client: AsyncClient, login, shop: Catalog, fake: FakeServer
) -> None:
    await shop.product(sku="SALT-1KG", price=3_000, stock=5)
    await login(customer())
    co = await start(client, (await place(client, "SALT-1KG"))["id"])
    answer = pay(fake, co["razorpay_order_id"], method="upi", outcome="declined", vpa="decline@okaxis")
    r = await client.post("/v1/payments/verify", json=answer)
    assert r.status_code == 402, r.text
    assert r.json()["type"].endswith("/payment-declined") and r.json()["reason"] == "payment_declined"


async def test_razorpay_failing_or_slow_is_503_with_retry_after_and_nothing_written(
    client: AsyncClient, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="OIL-1L", price=18_000, stock=5)
    await login(customer())
    order = await place(client, "OIL-1L")
    fake.fake.faults.fail_count = -1
    r = await client.post(f"/v1/orders/{order['id']}/payments")
    assert r.status_code == 503 and r.headers["retry-after"] == "7"
    assert r.headers["content-type"] == "application/problem+json"
    assert q(database_url, "SELECT count(*) FROM payment_checkouts") == [(0,)]
    fake.fake.faults.fail_count = 0
    co = await start(client, order["id"])
    answer = pay(fake, co["razorpay_order_id"])
    fake.fake.faults.delay_s = 3.0  # beyond the shop's 2 s timeout
    r = await client.post("/v1/payments/verify", json=answer)
    assert r.status_code == 503 and r.headers["retry-after"] == "7"
    assert q(database_url, "SELECT count(*) FROM payment_ledger") == [(0,)]
    assert q(database_url, "SELECT status FROM orders") == [("pending_payment",)]
    fake.fake.faults.delay_s = 0
    r = await client.post("/v1/payments/verify", json=answer)
    assert r.status_code == 200 and r.json()["order_status"] == "paid"


async def test_verify_and_webhook_racing_make_one_transition_and_one_ledger_entry(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="GHEE-1L", price=60_000, stock=5)
    await login(customer())
    order = await place(client, "GHEE-1L")
    co = await start(client, order["id"])
    answer = pay(fake, co["razorpay_order_id"])
    await deliver(client, fake.fake.deliveries())  # payment.authorized stored
    gateway = app.state.payments_gateway
    verify, worked = await asyncio.gather(
        client.post("/v1/payments/verify", json=answer), flows.process_webhooks(app.state.db, gateway)
    )
    assert verify.status_code == 200, verify.text
    await deliver(client, fake.fake.deliveries())  # payment.captured, order.paid
    await flows.process_webhooks(app.state.db, gateway)
    assert q(database_url, "SELECT count(*) FROM payment_ledger WHERE kind = 'captured'") == [(1,)]
    assert q(database_url, "SELECT count(*) FROM order_events WHERE to_status = 'paid'") == [(1,)]
    assert q(database_url, "SELECT status FROM orders") == [("paid",)]
