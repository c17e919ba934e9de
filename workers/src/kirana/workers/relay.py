"""The outbox relay: publishes committed outbox events to Redis, at least once, in order.

Each event goes to the Redis stream `kirana:events` (durable, for consumers that catch up) and
to the pub/sub channel `kirana:events:<topic>`; events routed to real-time channels are
numbered into their channel's history and fanned out to the API's sockets (`realtime.flows`).
Relays on several replicas share the work through `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import json
import logging

from redis.asyncio import Redis

from kirana.api.db.engine import Database
from kirana.api.outbox import service as outbox
from kirana.api.realtime import flows as realtime
from kirana.api.realtime.broker import Limits

log = logging.getLogger("kirana.workers.relay")

STREAM = "kirana:events"
STREAM_MAXLEN = 100_000


def channel(topic: str) -> str:
    return f"kirana:events:{topic}"


async def relay_once(db: Database, redis: Redis, *, batch: int = 200, history: Limits | None = None) -> int:
    """Publish one batch; returns how many events went out."""
    async with db.session() as session:
        events = await outbox.claim_batch(session, limit=batch)
        if not events:
            return 0
        pipe = redis.pipeline(transaction=False)
        for ev in events:
            body = json.dumps(
                {
                    "id": ev.id,
                    "topic": ev.topic,
                    "key": ev.key,
                    "payload": ev.payload,
                    "created_at": ev.created_at.isoformat(),
                },
                separators=(",", ":"),
            )
            pipe.xadd(STREAM, {"event": body}, maxlen=STREAM_MAXLEN, approximate=True)
            pipe.publish(channel(ev.topic), body)
        await pipe.execute()
        rows = [(ev.id, ev.topic, ev.payload, ev.created_at) for ev in events]
        await realtime.publish_events(redis, rows, limits=history or Limits())
        await outbox.mark_published(session, ids=[ev.id for ev in events])
    log.debug("relayed", extra={"count": len(events)})
    return len(events)
