"""The workers' outbox relay against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text

from kirana.api.db.engine import Database
from kirana.api.outbox import service as outbox
from kirana.api.outbox.models import OutboxEvent
from kirana.workers import probes, relay


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
                outbox.emit(s, topic="order.placed", key=str(i), payload={})

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


async def test_a_newer_replicas_topic_waits_for_a_worker_that_knows_it(
    database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rolling deploy: the new API writes a topic this build has never heard of. This relay
    leaves it in the outbox (and keeps relaying the rest); when a newer relay has put it in the
    stream, this build's consumers leave it pending, and a newer worker handles it."""
    from kirana.api.outbox.topics import TOPICS
    from kirana.workers import consumers

    db = Database(database_url)
    redis = Redis.from_url(redis_url)
    try:
        async with db.session() as s:
            outbox.emit(s, topic="order.placed", key="before", payload={})
            await s.execute(
                text("INSERT INTO outbox_events (topic, key, payload) VALUES ('order.returned', 'new', '{}')")
            )
            outbox.emit(s, topic="order.placed", key="after", payload={})
        assert await relay.relay_once(db, redis) == 2
        assert await relay.relay_once(db, redis) == 0
        async with db.session() as s:
            waiting = (
                await s.scalars(select(OutboxEvent.topic).where(OutboxEvent.published_at.is_(None)))
            ).all()
            assert list(waiting) == ["order.returned"]
            count, oldest = await outbox.backlog(s)
            assert count == 1 and oldest is not None
        await probes.probe_once(db, redis)  # what KiranaOutboxStalled reads
        assert probes.OUTBOX_UNPUBLISHED._value.get() == 1
        assert 0 <= probes.OUTBOX_OLDEST._value.get() < 60

        # a newer relay publishes it
        newer = TOPICS | {"order.returned"}
        async with db.session() as s:
            [event] = await outbox.claim_batch(s, topics=newer)
            await outbox.mark_published(s, ids=[event.id])
        body = json.dumps({"id": event.id, "topic": "order.returned", "key": "new", "payload": {}})
        await redis.xadd(relay.STREAM, {"event": body})

        deps = consumers.Deps(db=db, redis=redis, notifier=None, settings=None)  # type: ignore[arg-type]
        before = consumers.DEFERRED.labels("order.returned")._value.get()
        await consumers.consume_once(deps, consumer="old")
        pending = await redis.xpending(relay.STREAM, consumers.GROUP)
        assert pending["pending"] == 1, "only the unknown topic's entry is left unacknowledged"
        assert consumers.DEFERRED.labels("order.returned")._value.get() == before + 1

        handled: list[dict[str, object]] = []

        async def on_returned(_deps: consumers.Deps, payload: dict[str, object]) -> None:
            handled.append(payload)

        monkeypatch.setattr(consumers, "TOPICS", newer)
        monkeypatch.setitem(consumers.HANDLERS, "order.returned", on_returned)
        monkeypatch.setattr(consumers, "RETRY_IDLE_MS", 0)
        assert await consumers.consume_once(deps, consumer="new") == 1
        assert handled == [{}]
        assert (await redis.xpending(relay.STREAM, consumers.GROUP))["pending"] == 0
    finally:
        await redis.aclose()
        await db.dispose()


async def test_entries_left_pending_never_hide_a_later_retry(
    database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown-topic entries sit at the front of the pending list; XAUTOCLAIM looks at a bounded
    stretch per call, so each call resumes where the last stopped and reaches a failed event
    behind them."""
    from kirana.workers import consumers

    db = Database(database_url)
    redis = Redis.from_url(redis_url)
    try:
        await consumers.ensure_group(redis)
        for n in range(3):
            body = json.dumps({"id": n, "topic": "order.returned", "key": str(n), "payload": {}})
            await redis.xadd(relay.STREAM, {"event": body})
        body = json.dumps({"id": 9, "topic": "order.placed", "key": "late", "payload": {}})
        await redis.xadd(relay.STREAM, {"event": body})
        handled: list[dict[str, object]] = []

        async def on_placed(_deps: consumers.Deps, payload: dict[str, object]) -> None:
            handled.append(payload)

        deps = consumers.Deps(db=db, redis=redis, notifier=None, settings=None)  # type: ignore[arg-type]
        # every entry delivered once and left pending (the known one as if its handler failed)
        await redis.xreadgroup(consumers.GROUP, "crashed", {relay.STREAM: ">"}, count=10)
        monkeypatch.setitem(consumers.HANDLERS, "order.placed", on_placed)
        monkeypatch.setattr(consumers, "RETRY_IDLE_MS", 0)
        for _ in range(4):
            await consumers.consume_once(deps, consumer="cursor-test", count=1)
        assert handled == [{}]
    finally:
        await redis.aclose()
        await db.dispose()
