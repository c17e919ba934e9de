"""Periodic jobs of the orders domain: releasing the stock of reservations that ran out.

Registered in `kirana.workers.main.JOBS`; each run is one transaction per batch of orders.
"""

from __future__ import annotations

from kirana.api.db.engine import Database
from kirana.api.orders import service as orders

BATCH = 200


async def expire_reservations(db: Database) -> int:
    """Release the stock of unpaid orders past their reservation; loops until none are due."""
    total = 0
    while True:
        async with db.session() as session:
            n = await orders.expire_due(session, limit=BATCH)
        total += n
        if n < BATCH:
            return total
