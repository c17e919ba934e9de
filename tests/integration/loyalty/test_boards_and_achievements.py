"""Leaderboards and achievements on real PostgreSQL and Redis: live sets equal a rebuild from the
ledger, the caller's rank and neighbours, opting out, and a rule backfilled over history."""

from __future__ import annotations

import uuid

from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import select, text

from kirana.api.accounts.models import User
from kirana.api.db.engine import Database
from kirana.api.loyalty import achievements, leaderboards, unlocking
from kirana.api.loyalty.models import Achievement, OrderPoints
from kirana.api.stores.models import Store
from tests.integration.commerce.conftest import Catalog, Login, customer

from .conftest import Worker, delivered_order

PRICE = 105_000  # 100 points an item


async def snapshot(redis: Redis) -> dict[str, list[tuple[bytes, float]]]:
    keys = sorted([k async for k in redis.scan_iter(match="kirana:lb:*")])
    return {k.decode(): await redis.zrange(k, 0, -1, withscores=True) for k in keys}


async def name(db: Database, user_id: uuid.UUID, value: str) -> None:
    async with db.session() as s:
        await s.execute(User.__table__.update().where(User.id == user_id).values(name=value))


async def test_live_leaderboards_equal_a_rebuild_from_the_ledger(
    client: AsyncClient, login: Login, shop: Catalog, db: Database, worker: Worker, redis: Redis
) -> None:
    sku = (await shop.product(price=PRICE, stock=50)).variants[0].sku
    async with db.session() as s:
        s.add(Store(code="dl-1", name="Delhi 1"))
    people = []
    for n, (city, store) in enumerate(
        [("Bengaluru", None), ("New Delhi", "dl-1"), ("Bengaluru", "dl-1"), ("Pune", None)]
    ):
        u = await login(customer())
        assert u is not None
        people.append(u)
        await name(db, u.user_id, f"Person{n} Surname")
        for _ in range(n + 1):
            await delivered_order(db, client, sku, qty=1, city=city, store=store)
    await worker.pump()

    live = await snapshot(redis)
    assert "kirana:lb:all:city:new-delhi" in live and "kirana:lb:all:store:dl-1" in live
    top = [(m.decode(), s) for m, s in reversed(live["kirana:lb:all:all"])]
    assert top == [(str(p.user_id), float(100 * (i + 1))) for i, p in reversed(list(enumerate(people)))]
    async with db.session() as s:
        assert await leaderboards.check(s, redis) == []

    await redis.flushdb()
    await redis.zadd("kirana:lb:all:city:nowhere", {"x": 1})  # stale: the rebuild removes it
    async with db.session() as s:
        out = await leaderboards.rebuild(s, redis)
    assert out["removed"] == 1
    assert await snapshot(redis) == live

    # A drifted score is reported, then mended by a rebuild.
    await redis.zincrby("kirana:lb:all:all", 5, str(people[0].user_id))
    async with db.session() as s:
        diffs = await leaderboards.check(s, redis)
        assert diffs == [
            {"set": "kirana:lb:all:all", "user_id": str(people[0].user_id), "live": 105, "ledger": 100}
        ]
        await leaderboards.rebuild(s, redis)
        assert await leaderboards.check(s, redis) == []

    # The second customer sees their rank, masked names and neighbours.
    await login(people[1])
    r = await client.get("/v1/loyalty/leaderboards/week", params={"around": 1})
    assert r.status_code == 200, r.text
    board = r.json()
    assert board["me"] == {"rank": 3, "points": 200, "name": "P*** S***", "me": True}
    assert [x["rank"] for x in board["around"]] == [2, 3, 4]
    assert [x["points"] for x in board["top"]] == [400, 300, 200, 100]
    city = (await client.get("/v1/loyalty/leaderboards/month", params={"scope": "city:bengaluru"})).json()
    assert [x["points"] for x in city["top"]] == [300, 100]
    assert city["me"] is None

    # Opting out takes the customer off every board at once, and a rebuild keeps them off.
    r = await client.put("/v1/loyalty/me/leaderboard-preference", json={"leaderboard_opt_out": True})
    assert r.status_code == 200
    board = (await client.get("/v1/loyalty/leaderboards/all")).json()
    assert board["me"] is None and [x["points"] for x in board["top"]] == [400, 300, 100]
    async with db.session() as s:
        assert await leaderboards.check(s, redis) == []


async def test_a_refund_takes_the_points_off_the_boards(
    client: AsyncClient, login: Login, shop: Catalog, db: Database, worker: Worker, redis: Redis
) -> None:
    from kirana.api.orders.states import Status

    from .conftest import move

    u = await login(customer())
    assert u is not None
    sku = (await shop.product(price=PRICE, stock=5)).variants[0].sku
    first = await delivered_order(db, client, sku)
    await delivered_order(db, client, sku)
    await worker.pump()
    assert await redis.zscore("kirana:lb:all:all", str(u.user_id)) == 200
    await move(db, first, Status.refunded)
    await worker.pump()
    assert await redis.zscore("kirana:lb:all:all", str(u.user_id)) == 100
    async with db.session() as s:
        assert await leaderboards.check(s, redis) == []


async def test_backfill_unlocks_a_rule_at_the_time_history_reached_it_once(
    client: AsyncClient, login: Login, shop: Catalog, db: Database, worker: Worker
) -> None:
    u = await login(customer())
    assert u is not None
    sku = (await shop.product(price=PRICE, stock=10)).variants[0].sku
    for _ in range(5):
        await delivered_order(db, client, sku)
    await worker.pump()
    async with db.session() as s:
        fifth = (
            await s.scalars(
                select(OrderPoints.delivered_at)
                .where(OrderPoints.user_id == u.user_id)
                .order_by(OrderPoints.delivered_at)
            )
        ).all()[4]
        live = await s.get(Achievement, (u.user_id, "orders_5"))
        assert live is not None and live.unlocked_at == fifth
        # As if the rule were new: no rows for it yet.
        await s.execute(text("DELETE FROM loyalty_achievements WHERE rule = 'orders_5'"))
    async with db.session() as s:
        assert await unlocking.backfill(s, rule=achievements.BY_KEY["orders_5"]) == (1, 1)
    async with db.session() as s:
        assert await unlocking.backfill(s, rule=achievements.BY_KEY["orders_5"]) == (1, 0)
        row = await s.get(Achievement, (u.user_id, "orders_5"))
        assert row is not None and (row.progress, row.unlocked_at) == (5, fifth)
        pushes = await s.scalar(
            text(
                "SELECT count(*) FROM outbox_events "
                "WHERE topic = 'loyalty.achievement_unlocked' AND payload->>'rule' = 'orders_5'"
            )
        )
        assert pushes == 1  # the live unlock; the backfill pushed nothing


async def test_concurrent_evaluations_unlock_each_rule_reached_at_once_exactly_once(
    client: AsyncClient, login: Login, shop: Catalog, db: Database, worker: Worker
) -> None:
    """One order reaches two rules (first order, ₹10,000 spent); ten evaluations at once
    write both rules in one statement each and flip each rule once, pushing it once."""
    import asyncio

    u = await login(customer())
    assert u is not None
    sku = (await shop.product(price=10_000_00, stock=5)).variants[0].sku
    await delivered_order(db, client, sku, qty=2)
    await worker.pump()
    async with db.session() as s:  # as if neither rule had been evaluated yet
        await s.execute(text("DELETE FROM loyalty_achievements WHERE user_id = :u"), {"u": u.user_id})
        await s.execute(text("DELETE FROM outbox_events WHERE topic = 'loyalty.achievement_unlocked'"))

    async def evaluate() -> list[str]:
        async with db.session() as s:
            return await unlocking.evaluate_user(s, user_id=u.user_id)

    results = await asyncio.gather(*(evaluate() for _ in range(10)))
    flipped = sorted(key for r in results for key in r)
    assert flipped == ["first_order", "spend_10k"]
    async with db.session() as s:
        rows = {
            a.rule: a
            for a in (await s.scalars(select(Achievement).where(Achievement.user_id == u.user_id))).all()
        }
        assert set(rows) == {r.key for r in achievements.RULES}  # progress on every rule
        assert rows["first_order"].unlocked_at is not None and rows["spend_10k"].unlocked_at is not None
        assert rows["orders_5"].unlocked_at is None and rows["orders_5"].progress == 1
        assert rows["spend_50k"].unlocked_at is None
        pushes = (
            await s.scalars(
                text(
                    "SELECT payload->>'rule' FROM outbox_events "
                    "WHERE topic = 'loyalty.achievement_unlocked' ORDER BY 1"
                )
            )
        ).all()
        assert pushes == ["first_order", "spend_10k"]
