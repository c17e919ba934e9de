"""Periodic job of search: suggestion weights recomputed from what sold.

Registered in `kirana.workers.main.JOBS`. Documents and the word list are fresh at every commit
(database triggers); suggestion weights, which sum sales over titles, are rebuilt here.
"""

from __future__ import annotations

from kirana.api.db.engine import Database
from kirana.api.search import service as search


async def rebuild_terms(db: Database) -> int:
    """Recompute the suggestion table in one transaction; returns 1."""
    async with db.session() as session:
        await search.rebuild_terms(session)
    return 1
