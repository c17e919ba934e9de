"""Points on real PostgreSQL and Redis: earned through the outbox, credited once however often
the delivery event comes, redemptions that never overdraw, refunds into debt, expiry, and a
ledger the accounts can be rebuilt from exactly."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from kirana.api.db.engine import Database
from kirana.api.loyalty import flows, scheduled
from kirana.api.loyalty import service as loyalty
from kirana.api.loyalty.models import Account, LedgerEntry, Redemption
from kirana.api.orders import service as orders
from kirana.api.orders.models import Order
from kirana.api.orders.states import Status
from kirana.api.realtime import broker, channels
from kirana.api.settings import Settings
from tests.integration.commerce.conftest import Catalog, Login, customer

from .conftest import DELIVERY, Worker, delivered_order, move, place

PRICE = 105_000  # ₹1,050 with 5% GST included: ₹1,000 before tax, 100 points at the default rate


async def me(client: AsyncClient) -> dict[str, int]:
    r = await client.get("/v1/loyalty/me")
    assert r.status_code == 200, r.text
    body: dict[str, int] = r.json()
    return body


async def grant(db: Database, user_id: uuid.UUID, points: int) -> None:
    async with db.session() as s:
        await loyalty.post(s, user_id=user_id, kind="adjust", points=points, source=f"test:{uuid.uuid4()}")


async def test_paid_shows_pending_then_delivery_credits_and_pushes_the_first_achievement(
    client: AsyncClient, login: Login, shop: Catalog, db: Database, worker: Worker, redis: object
) -> None:
    buyer = await login(customer())
    assert buyer is not None
    product = await shop.product(price=PRICE, stock=5)
    order = await place(client, product.variants[0].sku, qty=2)
    await move(db, order["id"], Status.paid)
    await worker.pump()
    assert (await me(client))["pending"] == 200
    assert (await me(client))["balance"] == 0

    await move(db, order["id"], *DELIVERY)
    await worker.pump()
    body = await me(client)
    assert (body["balance"], body["pending"], body["debt"]) == (200, 0, 0)

    ach = {a["rule"]: a for a in (await client.get("/v1/loyalty/me/achievements")).json()["items"]}
    assert ach["first_order"]["unlocked_at"] is not None
    assert (ach["orders_5"]["progress"], ach["orders_5"]["target"], ach["orders_5"]["unlocked_at"]) == (
        1,
        5,
        None,
    )
    # The unlock went out through the outbox to the customer's real-time channel.
    await worker.pump()
    snap = await broker.snapshot(redis, channels.user_orders(buyer.user_id))  # type: ignore[arg-type]
    assert any('"loyalty.achievement"' in m and "first_order" in m for _, m in snap.history)

    history = (await client.get("/v1/loyalty/me/ledger")).json()["items"]
    assert [(e["kind"], e["points"], e["source"]) for e in history] == [("earn", 200, f"earn:{order['id']}")]
    async with db.session() as s:
        assert await loyalty.verify(s) == []


async def test_the_same_delivered_event_ten_times_concurrently_awards_once(
    client: AsyncClient, login: Login, shop: Catalog, db: Database, redis: object, settings: Settings
) -> None:
    buyer = await login(customer())
    assert buyer is not None
    product = await shop.product(price=PRICE, stock=5)
    order = await place(client, product.variants[0].sku)
    await move(db, order["id"], Status.paid, *DELIVERY)
    payload = {"order_id": order["id"], "user_id": str(buyer.user_id), "to": "delivered"}

    results = await asyncio.gather(
        *[flows.on_order_event(db, redis, payload=payload, settings=settings.loyalty) for _ in range(10)]  # type: ignore[arg-type]
    )
    assert sorted(results) == [False] * 9 + [True]
    async with db.session() as s:
        earned = await s.scalar(
            select(func.count()).where(
                LedgerEntry.order_id == uuid.UUID(order["id"]), LedgerEntry.kind == "earn"
            )
        )
        assert earned == 1
        assert await loyalty.verify(s) == []
    assert (await me(client))["balance"] == 100


async def test_fifty_concurrent_redemptions_never_take_the_balance_below_zero(
    client: AsyncClient, login: Login, shop: Catalog, db: Database
) -> None:
    buyer = await login(customer())
    assert buyer is not None
    product = await shop.product(price=PRICE, stock=60)
    placed = [await place(client, product.variants[0].sku) for _ in range(50)]
    await grant(db, buyer.user_id, 1_000)

    answers = await asyncio.gather(
        *[client.post("/v1/loyalty/redemptions", json={"order_id": o["id"], "points": 100}) for o in placed]
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * 10 + [422] * 40
    refused = next(r for r in answers if r.status_code == 422)
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("points-insufficient")
    body = await me(client)
    assert (body["balance"], body["debt"]) == (0, 0)
    async with db.session() as s:
        assert await loyalty.verify(s) == []


async def test_a_refund_reverses_partly_spent_points_into_debt_that_earnings_pay_first(
    client: AsyncClient, login: Login, shop: Catalog, db: Database, worker: Worker
) -> None:
    buyer = await login(customer())
    assert buyer is not None
    sku = (await shop.product(price=PRICE, stock=10)).variants[0].sku
    first = await delivered_order(db, client, sku)
    await worker.pump()
    assert (await me(client))["balance"] == 100
    assert (await me(client))["spend_12m_paise"] == 100_000

    spent_on = await place(client, sku)  # spend 60 of the 100 on the next order, and pay for it
    r = await client.post("/v1/loyalty/redemptions", json={"order_id": spent_on["id"], "points": 60})
    assert r.status_code == 201, r.text
    assert r.json()["value_paise"] == 600
    await move(db, spent_on["id"], Status.paid)
    await worker.pump()

    await move(db, first, Status.refunded)
    await worker.pump()
    body = await me(client)
    assert (body["balance"], body["debt"], body["spend_12m_paise"]) == (0, 60, 0)

    # The paid order, delivered, earns 100: 60 pay the debt, 40 are spendable.
    await move(db, spent_on["id"], *DELIVERY)
    await worker.pump()
    body = await me(client)
    assert (body["balance"], body["debt"]) == (40, 0)
    kinds = [e["kind"] for e in (await client.get("/v1/loyalty/me/ledger")).json()["items"]]
    assert kinds == ["earn", "reverse", "redeem", "earn"]
    async with db.session() as s:
        assert await loyalty.verify(s) == []


async def test_points_held_on_an_order_come_back_when_it_is_cancelled_or_expires(
    client: AsyncClient, login: Login, shop: Catalog, db: Database, worker: Worker
) -> None:
    buyer = await login(customer())
    assert buyer is not None
    sku = (await shop.product(price=PRICE, stock=10)).variants[0].sku
    await grant(db, buyer.user_id, 300)
    a, b = await place(client, sku), await place(client, sku)
    for o in (a, b):
        assert (
            await client.post("/v1/loyalty/redemptions", json={"order_id": o["id"], "points": 100})
        ).status_code == 201
    assert (await me(client))["balance"] == 100
    await move(db, a["id"], Status.cancelled)
    await move(db, b["id"], Status.expired)
    await worker.pump()
    await worker.pump()  # a replay changes nothing
    assert (await me(client))["balance"] == 300
    async with db.session() as s:
        assert await loyalty.verify(s) == []


async def test_a_cancelled_order_paid_late_at_its_discount_takes_its_points_again(
    client: AsyncClient, login: Login, shop: Catalog, db: Database, worker: Worker
) -> None:
    """The points came back when the order was cancelled, then a payment at the discounted amount
    was captured and payments revived the order: the points are taken again, once."""
    buyer = await login(customer())
    assert buyer is not None
    sku = (await shop.product(price=PRICE, stock=10)).variants[0].sku
    await grant(db, buyer.user_id, 300)
    order = await place(client, sku)
    r = await client.post("/v1/loyalty/redemptions", json={"order_id": order["id"], "points": 100})
    assert r.status_code == 201
    await move(db, order["id"], Status.cancelled)
    await worker.pump()
    assert (await me(client))["balance"] == 300
    async with db.session() as s:  # what payments does with a capture for a cancelled order
        row = await s.get(Order, uuid.UUID(order["id"]), with_for_update=True)
        assert row is not None and row.discount_paise == 100 * 10
        assert await orders.revive_paid(s, order=row, reference="pay_late")
    await worker.pump()
    await worker.pump()  # a replay changes nothing
    assert (await me(client))["balance"] == 200
    kinds = [e["kind"] for e in (await client.get("/v1/loyalty/me/ledger")).json()["items"]]
    assert kinds.count("reverse") == 1 and kinds.count("release") == 1
    async with db.session() as s:
        held = await s.get(Redemption, uuid.UUID(order["id"]))
        assert held is not None and held.status == "applied"
        assert await loyalty.verify(s) == []


async def test_expiry_takes_what_is_left_of_the_oldest_earnings_once(
    client: AsyncClient, login: Login, shop: Catalog, db: Database, worker: Worker
) -> None:
    buyer = await login(customer())
    assert buyer is not None
    sku = (await shop.product(price=PRICE, stock=10)).variants[0].sku
    await delivered_order(db, client, sku)
    await worker.pump()
    await asyncio.sleep(0.05)
    await delivered_order(db, client, sku)
    await worker.pump()
    spend = await place(client, sku)
    assert (
        await client.post("/v1/loyalty/redemptions", json={"order_id": spend["id"], "points": 50})
    ).status_code == 201
    async with db.session() as s:
        older, newer = (
            await s.scalars(
                select(LedgerEntry.created_at)
                .where(LedgerEntry.user_id == buyer.user_id, LedgerEntry.kind == "earn")
                .order_by(LedgerEntry.id)
            )
        ).all()
    cutoff = older + (newer - older) / 2
    now = scheduled.months_before(cutoff, -12)
    assert await scheduled.expire_points(db, months=12, now=now) == 50  # what is left of the older
    assert await scheduled.expire_points(db, months=12, now=now) == 0
    body = await me(client)
    assert body["balance"] == 100
    async with db.session() as s:
        assert await loyalty.verify(s) == []


async def test_rebuild_from_the_ledger_equals_the_live_accounts(
    client: AsyncClient, login: Login, shop: Catalog, db: Database, worker: Worker
) -> None:
    sku = (await shop.product(price=PRICE, stock=20)).variants[0].sku
    users = []
    for n in range(3):
        u = await login(customer())
        assert u is not None
        users.append(u.user_id)
        for _ in range(n + 1):
            await delivered_order(db, client, sku)
        pending = await place(client, sku)
        await move(db, pending["id"], Status.paid)
    await worker.pump()
    async with db.session() as s:
        live = {a.user_id: (a.balance, a.debt, a.pending) for a in (await s.scalars(select(Account))).all()}
        assert await loyalty.verify(s) == []
        await s.execute(text("UPDATE loyalty_accounts SET balance = balance + 7, pending = 0"))
    async with db.session() as s:
        wrong = await loyalty.verify(s)
        assert {d["user_id"] for d in wrong} == {str(u) for u in users}
        assert await loyalty.rebuild(s) == 3
    async with db.session() as s:
        rebuilt = {
            a.user_id: (a.balance, a.debt, a.pending) for a in (await s.scalars(select(Account))).all()
        }
        assert await loyalty.verify(s) == []
    assert rebuilt == live
    assert sorted(v[0] for v in live.values()) == [100, 200, 300]
    assert {v[2] for v in live.values()} == {100}


async def test_the_ledger_is_append_only(client: AsyncClient, login: Login, db: Database) -> None:
    u = await login(customer())
    assert u is not None
    await grant(db, u.user_id, 10)
    for stmt in ("UPDATE loyalty_ledger SET points = 1000", "DELETE FROM loyalty_ledger"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.session() as s:
                await s.execute(text(stmt))
