"""Follow the catalog's PostgreSQL notifications and empty the listing cache on each one.

Started by the app's lifespan: one dedicated asyncpg connection per process that LISTENs on
`CHANNEL` (the triggers of migration c0ffee000002 notify it when a committed change alters what
a listing shows). When the connection fails (`kirana.api.db.listen.Listener` notices and
reconnects), the cache stops serving (`followed` is cleared), emptying itself once it follows
again. It needs a session-level connection: behind a transaction-mode pooler such as PgBouncer,
point `KIRANA_DATABASE_URL` at PostgreSQL itself or turn the cache off.
"""

from __future__ import annotations

from kirana.api.catalog.listing_cache import ListingCache
from kirana.api.db.listen import Listener

CHANNEL = "kirana_catalog"
APPLICATION_NAME = "kirana-catalog-listener"  # how the connection shows in pg_stat_activity


class CatalogListener(Listener):
    channel, application_name = CHANNEL, APPLICATION_NAME
    what, fallback = "catalog invalidations", "listing cache bypassed"

    def __init__(self, dsn: str, cache: ListingCache, *, ping_s: float = 5.0, retry_s: float = 0.5) -> None:
        super().__init__(dsn, ping_s=ping_s, retry_s=retry_s)
        self.cache = cache
        self.last_payload: str | None = None  # of the latest notification, in commit order

    def notified(self, payload: str) -> None:
        self.last_payload = payload
        self.cache.invalidate()

    def followed(self) -> None:
        self.cache.invalidate()  # anything may have changed while nobody listened
        self.cache.followed = True

    def lost(self) -> None:
        self.cache.followed = False
        self.cache.invalidate()
