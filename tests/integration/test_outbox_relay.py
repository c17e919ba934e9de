"""The workers' outbox relay against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json

from redis.asyncio import Redis
from sqlalchemy import select

from kirana.api.db.engine import Database
from kirana.api.outbox import service as outbox
from kirana.api.outbox.models import OutboxEvent
from kirana.workers import relay


async def test_committed_events_reach_redis_once_and_rolled_back_ones_never(
    database_url: str, redis_url: str
) -> None:
    db = Database(database_url)
    redis = Redis.from_url(redis_url)
    try:
        async with db.session() as s:
            for i in range(3):
                outbox.emit(s, topic="order.placed", key=f"o{i}", payload={"i": i})
        try:
            async with db.session() as s:
                outbox.emit(s, topic="order.placed", key="ghost", payload={})
                raise RuntimeError("the order failed")
        except RuntimeError:
            pass

        pubsub = redis.pubsub()
        await pubsub.subscribe(relay.channel("order.placed"))
        await pubsub.get_message(timeout=1)  # subscription confirmation
        assert await relay.relay_once(db, redis) == 3
        assert await relay.relay_once(db, redis) == 0

        entries = await redis.xrange(relay.STREAM)
        keys = [json.loads(fields[b"event"])["key"] for _, fields in entries]
        assert keys == ["o0", "o1", "o2"]
        live = []
        for _ in range(3):
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
            assert msg is not None
            live.append(json.loads(msg["data"])["key"])
        assert live == ["o0", "o1", "o2"]
        async with db.session() as s:
            unpublished = (
                await s.scalars(select(OutboxEvent).where(OutboxEvent.published_at.is_(None)))
            ).all()
        assert unpublished == []
        await pubsub.aclose()
    finally:
        await redis.aclose()
        await db.dispose()


async def test_two_relays_never_publish_the_same_event_twice(database_url: str, redis_url: str) -> None:
    db = Database(database_url)
    redis = Redis.from_url(redis_url)
    try:
        async with db.session() as s:
            for i in range(500):
                outbox.emit(s, topic="t", key=str(i), payload={})

        async def drain() -> int:
            total = 0
            while n := await relay.relay_once(db, redis, batch=50):
                total += n
            return total

        a, b = await asyncio.gather(drain(), drain())
        assert a + b == 500
        entries = await redis.xrange(relay.STREAM, count=1000)
        assert len(entries) == 500
    finally:
        await redis.aclose()
        await db.dispose()
