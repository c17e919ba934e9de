"""Periodic jobs of idempotency: forgetting keys past their retention.

Registered in `kirana.workers.main.JOBS`; each run is one transaction.
"""

from __future__ import annotations

from kirana.api.db.engine import Database
from kirana.api.idempotency import service as idempotency


async def purge_expired_keys(db: Database) -> int:
    """Delete expired Idempotency-Key records (a bounded batch per run); returns how many."""
    async with db.session() as session:
        return await idempotency.purge_expired(session)
