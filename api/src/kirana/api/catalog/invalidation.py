"""Follow the catalog's PostgreSQL notifications and empty the page caches on each one.

Started by the app's lifespan: one dedicated asyncpg connection per process that LISTENs on
`CHANNEL` (triggers notify it when a committed change alters what a listing, a search or a
suggestion shows: the catalog tables (migration c0ffee000002), the search documents and the
synonym groups (c0ffee000046), the suggestion keys (c0ffee000047)). The caches are the listing's, search's and
suggestions', one of each per process; each payload names the table that changed, and a table
given in `only` (the suggestion keys, which listings and searches never read) empties only its
own caches, so the search job's weight rebuild leaves the other pages alone. When the
connection fails (`kirana.api.db.listen.Listener` notices and reconnects), they stop serving
(`followed` is cleared), emptying themselves once they follow again. It needs a session-level
connection: behind a transaction-mode pooler such as PgBouncer, point `KIRANA_DATABASE_URL` at
PostgreSQL itself or turn the caches off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kirana.api.catalog.listing_cache import ListingCache
from kirana.api.db.listen import Listener

CHANNEL = "kirana_catalog"
APPLICATION_NAME = "kirana-catalog-listener"  # how the connection shows in pg_stat_activity


class CatalogListener(Listener):
    channel, application_name = CHANNEL, APPLICATION_NAME
    what, fallback = "catalog invalidations", "page caches bypassed"

    def __init__(
        self,
        dsn: str,
        *caches: ListingCache,
        only: Mapping[str, Sequence[ListingCache]] | None = None,
        ping_s: float = 5.0,
        retry_s: float = 0.5,
    ) -> None:
        super().__init__(dsn, ping_s=ping_s, retry_s=retry_s)
        self.caches = caches
        self.only = dict(only or {})  # payload (a table) -> the only caches that read it
        self.last_payload: str | None = None  # of the latest notification, in commit order

    @property
    def wanted(self) -> bool:
        """Whether any of its caches is on (with none, nothing needs to listen)."""
        return any(cache.enabled for cache in self.caches)

    def notified(self, payload: str) -> None:
        self.last_payload = payload
        for cache in self.only.get(payload, self.caches):
            cache.invalidate()

    def followed(self) -> None:
        for cache in self.caches:
            cache.invalidate()  # anything may have changed while nobody listened
            cache.followed = True

    def lost(self) -> None:
        for cache in self.caches:
            cache.followed = False
            cache.invalidate()
