"""Committed outbox events to channel messages: called by the workers' relay for every batch.

A domain never imports this: it emits an outbox event in its own transaction (topic listed in
`channels.ROUTES`), and the relay, which only sees committed rows, hands the batch here. The
outbox id is the deduplication key, so a batch relayed twice (a relay that died before marking
it) reaches each channel once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from kirana.api.realtime import broker, channels


async def publish_events(
    redis: Redis,
    events: Iterable[tuple[int, str, dict[str, Any], datetime]],
    *,
    limits: broker.Limits = broker.Limits(),
) -> int:
    """(outbox id, topic, payload, created_at) in outbox order; returns messages published."""
    sent = 0
    for event_id, topic, payload, created_at in events:
        kind, targets = channels.route(topic, payload)
        if not targets:
            continue
        body = broker.message_body(type=kind, data=payload, at=created_at)
        for channel in targets:
            sent += bool(
                await broker.publish(redis, channel=channel, body=body, dedup=str(event_id), limits=limits)
            )
    return sent
