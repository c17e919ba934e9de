"""Event consumers: worker-side reactions to outbox events, read from the relay's stream.

The relay (`relay.py`) appends every committed outbox event to the Redis stream
`kirana:events`; this module reads it as the consumer group `GROUP`, so each event is handled
by one worker replica, and acknowledges it once its handler has finished. An event whose
handler failed stays pending and is claimed again after `RETRY_IDLE_MS` (by any replica).
Handlers are registered in `HANDLERS` by topic. Events of a topic this build declares
(`outbox.topics.TOPICS`) but does not react to are acknowledged unread; an event of a topic it
has never heard of (written by a newer replica during a rolling deploy) is left pending, so a
worker that knows it claims it later instead of it being lost.
Called by `main.run` (a loop) and by tests (`consume_once`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from kirana.api.accounts import resets, signups
from kirana.api.db.engine import Database
from kirana.api.loyalty import flows as loyalty
from kirana.api.notify.providers import Notifier
from kirana.api.outbox.topics import TOPICS
from kirana.api.payments import notices
from kirana.api.settings import Settings
from kirana.workers import relay

log = logging.getLogger("kirana.workers.consumers")

GROUP = "kirana-workers"
RETRY_IDLE_MS = 60_000

DEFERRED = Counter(
    "kirana_worker_events_deferred_total",
    "Stream events of a topic this worker does not know, left pending for a newer replica.",
    ["topic"],
)

LOST = Counter(
    "kirana_worker_events_trimmed_total",
    "Pending stream events trimmed away before a worker handled them (seen by XAUTOCLAIM).",
)
_cursors: dict[str, Any] = {}  # consumer -> where its next XAUTOCLAIM starts


@dataclass(frozen=True)
class Deps:
    db: Database
    redis: Redis
    notifier: Notifier
    settings: Settings


async def _password_reset(deps: Deps, payload: dict[str, Any]) -> None:
    await resets.deliver(deps.db, deps.notifier, payload=payload, ttl_s=deps.settings.password_reset_ttl_s)


async def _signup(deps: Deps, payload: dict[str, Any]) -> None:
    await signups.deliver(deps.db, deps.notifier, payload=payload, redis=deps.redis)


async def _order_status(deps: Deps, payload: dict[str, Any]) -> None:
    await loyalty.on_order_event(deps.db, deps.redis, payload=payload, settings=deps.settings.loyalty)


async def _auto_refunded(deps: Deps, payload: dict[str, Any]) -> None:
    await notices.auto_refunded(deps.db, deps.notifier, payload=payload)


async def _payment_refunded(deps: Deps, payload: dict[str, Any]) -> None:
    await loyalty.on_refund_event(deps.db, deps.redis, payload=payload)


HANDLERS: dict[str, Callable[[Deps, dict[str, Any]], Awaitable[None]]] = {
    resets.TOPIC: _password_reset,
    signups.TOPIC: _signup,
    loyalty.TOPIC: _order_status,
    notices.TOPIC: _auto_refunded,
    loyalty.REFUND_TOPIC: _payment_refunded,
}


async def ensure_group(redis: Redis) -> None:
    """Create the group reading from the stream's start (handlers drop stale events)."""
    try:
        await redis.xgroup_create(relay.STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def _handle(deps: Deps, entry_id: bytes, fields: dict[bytes, bytes]) -> bool:
    event = json.loads(fields[b"event"])
    if event["topic"] not in TOPICS:
        DEFERRED.labels(event["topic"]).inc()
        log.warning(
            "event of an unknown topic left pending for a newer worker", extra={"topic": event["topic"]}
        )
        return False
    handler = HANDLERS.get(event["topic"])
    if handler is not None:
        try:
            await handler(deps, event["payload"])
        except Exception:
            log.exception("event handler failed; retried later", extra={"topic": event["topic"]})
            return False
    await deps.redis.xack(relay.STREAM, GROUP, entry_id)
    return handler is not None


async def consume_once(deps: Deps, *, consumer: str, block_ms: int | None = None, count: int = 100) -> int:
    """Handle the events that failed elsewhere long enough ago, then new ones; returns how many
    events a handler took."""
    await ensure_group(deps.redis)
    handled = 0
    # XAUTOCLAIM looks at a bounded stretch of the pending list per call: resume where the last
    # call stopped, so entries left pending on purpose (unknown topics) never hide later ones.
    claimed = await deps.redis.xautoclaim(
        relay.STREAM,
        GROUP,
        consumer,
        min_idle_time=RETRY_IDLE_MS,
        start_id=_cursors.get(consumer, "0-0"),
        count=count,
    )
    _cursors[consumer] = claimed[0]
    if len(claimed) > 2 and claimed[2]:  # pending entries the stream's trimming removed
        LOST.inc(len(claimed[2]))
        log.error(
            "pending events were trimmed from the stream before any worker handled them",
            extra={"count": len(claimed[2])},
        )
    for entry_id, fields in claimed[1]:
        if fields:  # a trimmed entry comes back empty
            handled += await _handle(deps, entry_id, fields)
        else:
            await deps.redis.xack(relay.STREAM, GROUP, entry_id)
    batches = cast(
        "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None",
        await deps.redis.xreadgroup(GROUP, consumer, {relay.STREAM: ">"}, count=count, block=block_ms),
    )
    for _stream, entries in batches or []:
        for entry_id, fields in entries:
            handled += await _handle(deps, entry_id, fields)
    return handled
