"""Periodic job of search: popularity and suggestion weights recomputed from what sold.

Registered in `kirana.workers.main.JOBS`. Documents and the word list are fresh at every commit
(database triggers); popularity (units ordered, a ranking boost) and suggestion weights, which
sum sales, are kept out of the order path and brought up to date here.
"""

from __future__ import annotations

from kirana.api.db.engine import Database
from kirana.api.search import service as search


async def rebuild_terms(db: Database) -> int:
    """Popularity, committed on its own (its row locks held briefly), then the suggestion table;
    returns the documents whose popularity moved."""
    async with db.session() as session:
        moved = await search.refresh_popularity(session)
    async with db.session() as session:
        await search.rebuild_terms(session)
    return moved
