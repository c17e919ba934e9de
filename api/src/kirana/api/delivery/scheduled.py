"""Periodic job of the delivery domain: forget old positions.

`prune_positions` is registered in `kirana.workers.main` (every minute) with the retention of
`KIRANA_DELIVERY_POSITION_RETENTION_S`; each delivery keeps its latest position on its own row.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select

from kirana.api.db.base import utcnow
from kirana.api.db.engine import Database
from kirana.api.delivery.models import DeliveryPosition

BATCH = 5_000


async def prune_positions(db: Database, *, retention_s: int, batch: int = BATCH) -> int:
    """Delete positions received more than `retention_s` ago, a batch per transaction."""
    cutoff = utcnow() - timedelta(seconds=retention_s)
    total = 0
    while True:
        async with db.session() as session:
            ids = select(DeliveryPosition.id).where(DeliveryPosition.received_at < cutoff).limit(batch)
            result = await session.execute(delete(DeliveryPosition).where(DeliveryPosition.id.in_(ids)))
            removed = int(getattr(result, "rowcount", 0) or 0)
        total += removed
        if removed < batch:
            return total
