"""Periodic jobs of sync: numbering committed changes, and compacting the change log.

Registered in `kirana.workers.main.JOBS`; each run is one transaction.
"""

from __future__ import annotations

from kirana.api.db.engine import Database
from kirana.api.sync import changes
from kirana.api.sync import service as sync


async def stamp_changes(db: Database) -> int:
    """Give committed changes their sequence numbers (see `changes.stamp`); returns how many."""
    async with db.session() as session:
        return await changes.stamp(session)


async def compact_changes(db: Database) -> int:
    """Drop change rows superseded by newer ones (see `sync.compact`); returns how many."""
    async with db.session() as session:
        return await sync.compact(session)
