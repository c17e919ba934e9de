"""The storm: 200 orders paid while every webhook is delivered three times, shuffled, with 5%
of deliveries lost, some customers paying twice and some verifying at once; then the
reconciler. Every order ends paid exactly once, nothing is refunded twice, the ledger balances."""

from __future__ import annotations

import asyncio
import random

from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api.devrazorpay.server import FakeServer
from kirana.api.payments import ledger_check
from kirana.api.payments import scheduled as flows
from tests.integration.commerce.conftest import Catalog, customer
from tests.integration.payments.conftest import deliver, pay, place, start
from tests.integration.payments.test_payments_checkout import q

ORDERS = 200


async def test_storm_of_webhooks_pays_every_order_exactly_once(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    rng = random.Random(12)
    await shop.product(sku="STORM", price=11_100, stock=ORDERS)
    await login(customer())
    fake.fake.webhooks.copies, fake.fake.webhooks.shuffle = 3, True
    fake.fake.webhooks.drop_rate, fake.fake.webhooks.seed = 0.05, 12
    gateway, db = app.state.payments_gateway, app.state.db

    orders = [await place(client, "STORM") for _ in range(ORDERS)]
    checkouts = [await start(client, o["id"]) for o in orders]
    twice = set(rng.sample(range(ORDERS), 10))
    verifying = set(rng.sample(range(ORDERS), 30))
    answers = []
    for i, co in enumerate(checkouts):
        answers.append(pay(fake, co["razorpay_order_id"], method=rng.choice(["upi", "card"])))
        if i in twice:
            pay(fake, co["razorpay_order_id"], method="upi")

    async def worker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await flows.process_webhooks(db, gateway)
            await asyncio.sleep(0.05)

    stop = asyncio.Event()
    running = asyncio.create_task(worker(stop))
    for _ in range(4):  # authorized -> captured / order.paid -> refund.* rounds
        batch = fake.fake.deliveries()
        calls = [deliver(client, batch[i : i + 25]) for i in range(0, len(batch), 25)]
        calls += [client.post("/v1/payments/verify", json=answers[i]) for i in verifying]
        verifying = set()
        results = await asyncio.gather(*calls)
        for r in results:
            if isinstance(r, list):
                assert set(r) <= {200}
            else:
                assert r.status_code == 200, r.text
        await asyncio.sleep(0.5)
    stop.set()
    await running
    await flows.process_webhooks(db, gateway)
    await flows.reconcile_pending(db, gateway)
    await flows.process_webhooks(db, gateway)

    assert fake.fake.dropped > 0  # some deliveries really were lost
    assert q(database_url, "SELECT status, count(*) FROM orders GROUP BY status") == [("paid", ORDERS)]
    assert q(database_url, "SELECT count(*) FROM order_events WHERE to_status = 'paid'") == [(ORDERS,)]
    per_order = q(
        database_url,
        "SELECT order_id, sum(amount_paise) FILTER (WHERE kind = 'captured') -"
        " coalesce(sum(amount_paise) FILTER (WHERE kind = 'refunded'), 0)"
        " FROM payment_ledger GROUP BY order_id",
    )
    assert len(per_order) == ORDERS and {net for _, net in per_order} == {orders[0]["total_paise"]}
    assert q(database_url, "SELECT count(*) FROM payment_ledger WHERE kind = 'refunded'") == [(len(twice),)]
    at_razorpay = fake.account.payments.values()
    assert all(p["amount_refunded"] in (0, p["amount"]) for p in at_razorpay)
    assert sum(1 for p in at_razorpay if p["amount_refunded"]) == len(twice) == len(fake.account.refunds)
    async with db.session() as session:
        assert await ledger_check.verify_ledger(session) == []
