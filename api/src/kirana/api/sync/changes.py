"""Record what changed for the mobile app's pull, and number committed changes in order.

Domains call `record` (or `record_many`) inside their own transaction; the worker's
`sync.stamp` job and every pull call `stamp`, which numbers committed, unnumbered rows from the
`sync_change_seq` sequence while holding a transaction-level advisory lock. Because only one
stamper runs at a time and each commits before the next starts, sequence numbers become visible
in order, which is what makes a plain number a safe cursor.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.sync.models import SyncChange

STAMP_LOCK_KEY = 0x6B5F73796E63  # "k_sync"

PRODUCT = "product"
CATEGORY = "category"
BRAND = "brand"
CART = "cart"
ORDER = "order"


async def record(
    session: AsyncSession,
    *,
    entity: str,
    entity_id: uuid.UUID,
    user_id: uuid.UUID | None = None,
    deleted: bool = False,
) -> None:
    await record_many(session, entity=entity, entity_ids=[entity_id], user_id=user_id, deleted=deleted)


async def record_many(
    session: AsyncSession,
    *,
    entity: str,
    entity_ids: Iterable[uuid.UUID],
    user_id: uuid.UUID | None = None,
    deleted: bool = False,
) -> None:
    rows = [
        {"entity": entity, "entity_id": eid, "user_id": user_id, "deleted": deleted}
        for eid in dict.fromkeys(entity_ids)
    ]
    if rows:
        await session.execute(insert(SyncChange), rows)


@dataclass(frozen=True)
class Change:
    entity: str
    entity_id: uuid.UUID
    user_id: uuid.UUID | None = None
    deleted: bool = False


async def record_mixed(session: AsyncSession, items: Iterable[Change]) -> None:
    """Several changes of different entities in one INSERT (one round trip)."""
    rows = [
        {"entity": c.entity, "entity_id": c.entity_id, "user_id": c.user_id, "deleted": c.deleted}
        for c in dict.fromkeys(items)
    ]
    if rows:
        await session.execute(insert(SyncChange), rows)


async def stamp(session: AsyncSession, *, limit: int = 20_000) -> int:
    """Number committed changes; returns how many, or 0 when another stamper holds the lock.

    The caller must commit promptly: the advisory lock is held until its transaction ends.
    """
    got = (
        await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": STAMP_LOCK_KEY})
    ).scalar()
    if not got:
        return 0
    result = await session.execute(
        text(
            "UPDATE sync_changes SET seq = nextval('sync_change_seq') WHERE id IN "
            "(SELECT id FROM sync_changes WHERE seq IS NULL ORDER BY id LIMIT :limit)"
        ),
        {"limit": limit},
    )
    return int(getattr(result, "rowcount", 0) or 0)
