"""Write events to the outbox and hand committed ones to the relay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.outbox.models import OutboxEvent


def emit(session: AsyncSession, *, topic: str, key: str, payload: dict[str, Any]) -> OutboxEvent:
    """Record an event in the caller's transaction; it is published only if that commits."""
    event = OutboxEvent(topic=topic, key=key, payload=payload)
    session.add(event)
    return event


async def claim_batch(session: AsyncSession, *, limit: int = 100) -> Sequence[OutboxEvent]:
    """Lock up to `limit` unpublished events; concurrent relays skip each other's rows."""
    stmt = (
        select(OutboxEvent)
        .where(OutboxEvent.published_at.is_(None))
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
