"""The loyalty programme's periodic job: expiring earnings older than the configured months.

Registered by `kirana.workers.main` (`jobs(settings)`); also run by `kirana loyalty expire`.
Each batch of accounts is one transaction; accounts are locked with SKIP LOCKED so concurrent
workers share them, and the ledger's unique source (`expire:<earning id>`) makes a rerun over
the same account write nothing. Oldest earnings expire first: the walk over the ledger
(`rules.expiring`) spends debits against the oldest lots before anything expires.
"""

from __future__ import annotations

import calendar
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import select, text

from kirana.api.db.base import utcnow
from kirana.api.db.engine import Database
from kirana.api.loyalty import rules
from kirana.api.loyalty import service as loyalty
from kirana.api.loyalty.models import LedgerEntry
from kirana.api.settings import LoyaltySettings

log = logging.getLogger("kirana.loyalty")


def months_before(at: datetime, months: int) -> datetime:
    """The same instant `months` calendar months earlier (day clamped to the month's end)."""
    y, m = divmod(at.year * 12 + at.month - 1 - months, 12)
    return at.replace(year=y, month=m + 1, day=min(at.day, calendar.monthrange(y, m + 1)[1]))


_DUE = text(
    """
    SELECT a.user_id FROM loyalty_accounts a
    WHERE a.balance > 0 AND a.user_id > :after AND EXISTS (
        SELECT 1 FROM loyalty_ledger l
        WHERE l.user_id = a.user_id AND l.kind = 'earn' AND l.created_at < :cutoff
          AND NOT EXISTS (SELECT 1 FROM loyalty_ledger x WHERE x.source = 'expire:' || l.id)
    )
    ORDER BY a.user_id
    LIMIT :limit
    FOR UPDATE OF a SKIP LOCKED
    """
)


async def expire_batch(
    db: Database, *, cutoff: datetime, after: uuid.UUID, months: int, limit: int = 200
) -> tuple[uuid.UUID | None, int]:
    """One transaction over up to `limit` due accounts after `after` (by user id);
    (the last account looked at or None when none was due, points expired)."""
    expired = 0
    async with db.session() as session:
        users = list((await session.scalars(_DUE, {"cutoff": cutoff, "after": after, "limit": limit})).all())
        for user_id in users:
            entries = [
                rules.Entry(e.id, e.kind, e.points, e.created_at, e.lot_id)
                for e in (
                    await session.scalars(
                        select(LedgerEntry).where(LedgerEntry.user_id == user_id).order_by(LedgerEntry.id)
                    )
                ).all()
            ]
            for lot_id, points in rules.expiring(entries, cutoff=cutoff):
                if await loyalty.post(
                    session,
                    user_id=user_id,
                    kind="expire",
                    points=-points,
                    source=f"expire:{lot_id}",
                    lot_id=lot_id,
                    reason=f"earned more than {months} months ago",
                ):
                    expired += points
    return (users[-1] if users else None), expired


async def expire_points(db: Database, *, months: int, now: datetime | None = None) -> int:
    """Expire what is due, batch after batch through every account; returns the points expired."""
    cutoff = months_before(now or utcnow(), months)
    total = 0
    after: uuid.UUID | None = uuid.UUID(int=0)
    while after is not None:
        after, expired = await expire_batch(db, cutoff=cutoff, after=after, months=months)
        total += expired
    if total:
        log.info("loyalty points expired", extra={"points": total})
    return total


def jobs(settings: LoyaltySettings) -> list[tuple[str, float, Callable[[Database], Awaitable[int]]]]:
    """(name, every seconds, run) for the worker."""

    async def expire(db: Database) -> int:
        return await expire_points(db, months=settings.expiry_months)

    return [("loyalty.expire_points", 3600.0, expire)]
