"""Write events to the outbox and hand committed ones to the relay."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.outbox.models import OutboxEvent
from kirana.api.outbox.topics import TOPICS


def emit(session: AsyncSession, *, topic: str, key: str, payload: dict[str, Any]) -> OutboxEvent:
    """Record an event in the caller's transaction; it is published only if that commits.
    `topic` must be declared in `outbox.topics.TOPICS` (ValueError otherwise: a relay of this
    build would never publish it)."""
    if topic not in TOPICS:
        raise ValueError(f"outbox topic {topic!r} is not declared in kirana.api.outbox.topics")
    event = OutboxEvent(topic=topic, key=key, payload=payload)
    session.add(event)
    return event


async def claim_batch(
    session: AsyncSession, *, limit: int = 100, topics: Collection[str] = TOPICS
) -> Sequence[OutboxEvent]:
    """Lock up to `limit` unpublished events of `topics` (the ones this build knows: a newer
    replica's events wait for a newer relay); concurrent relays skip each other's rows."""
    stmt = (
        select(OutboxEvent)
        .where(OutboxEvent.published_at.is_(None), OutboxEvent.topic.in_(list(topics)))
        .order_by(OutboxEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(stmt)).all()


async def mark_published(session: AsyncSession, *, ids: Sequence[int]) -> None:
    """Mark these events as published (the relay sent them)."""
    if ids:
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(published_at=func.now())
        )


async def backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many events wait unpublished, and when the oldest was written (None when none waits);
    read through the partial index of unpublished rows."""
    row = (
        await session.execute(
            select(func.count(), func.min(OutboxEvent.created_at)).where(OutboxEvent.published_at.is_(None))
        )
    ).one()
    return int(row[0]), row[1]
