"""Orders work that runs outside a request: the reservation-expiry job the workers schedule.

Registered in `kirana.workers.main.JOBS`; each run is one transaction.
"""

from __future__ import annotations

from kirana.api.db.engine import Database
from kirana.api.idempotency import service as idempotency
from kirana.api.orders import service as orders
from kirana.api.sync import changes


async def expire_reservations(db: Database) -> int:
    """Release the stock of unpaid orders past their reservation; loops until none are due."""
    total = 0
    while True:
        async with db.session() as session:
            n = await orders.expire_due(session, limit=200)
        total += n
        if n < 200:
            return total


async def purge_idempotency_keys(db: Database) -> int:
    async with db.session() as session:
        return await idempotency.purge_expired(session)


async def stamp_sync_changes(db: Database) -> int:
    async with db.session() as session:
        return await changes.stamp(session)


async def compact_sync_changes(db: Database) -> int:
    from kirana.api.sync import service as sync

    async with db.session() as session:
        return await sync.compact(session)
