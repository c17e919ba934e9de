"""A per-process cache of public pages (body + ETag), kept exact by PostgreSQL: one for the
catalog listing, one for search answers, one for suggestions.

Used by the catalog and search routers (misses) and `catalog.edge` (hits, answered before the
framework).
Staff views of drafts are never cached.

Freshness does not rest on the TTL. Triggers on the catalog tables (migration c0ffee000002)
`NOTIFY kirana_catalog` in the very transaction that changes what a listing shows: products,
brands and categories, variants added or removed, and a variant's price, MRP, attributes, active
flag, or stock crossing zero (which flips `in_stock`). PostgreSQL delivers the notification
only once that transaction has committed, whichever process or tool committed it, and
`catalog.invalidation` empties this cache on each one. So:

- a page is served only while this process follows the channel (`followed`); while the
  listening connection is down every request reads the database, and the cache is emptied
  whenever following starts again, so a missed notification can never keep a page alive;
- a page computed while a change was committing is not stored (the generation check), and
  later requests never join a query that began before an invalidation;
- `ttl_s` (`KIRANA_CATALOG_LISTING_CACHE_S`, default 60 s; 0 disables the cache) is only a
  safety net on top of this;
- a catalog write served by this process also empties the cache when it starts and again
  after it commits, before the notification comes back.

Concurrent misses for one page share a single database query (no stampede after a change).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kirana.api import metrics


@dataclass(frozen=True)
class Page:
    body: bytes
    etag: str
    expires: float


class ListingCache:
    def __init__(
        self, ttl_s: float, *, name: str = "listing", max_entries: int = 2048, followed: bool = True
    ) -> None:
        self.name = name  # the `cache` label of its metrics
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        # True while every catalog change reaches `invalidate` (set by catalog.invalidation).
        self.followed = followed
        self._pages: OrderedDict[str, Page] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[Page]] = {}
        self._generation = 0
        self.hits = 0
        self.misses = 0
        self.invalidations = 0
        lookups = metrics.PAGE_CACHE_LOOKUPS
        self._hit, self._miss = lookups.labels(name, "hit"), lookups.labels(name, "miss")
        self._bypassed = lookups.labels(name, "bypassed")
        self._invalidated = metrics.PAGE_CACHE_INVALIDATIONS.labels(name)

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    @property
    def active(self) -> bool:
        """Pages may be served and stored now."""
        return self.ttl_s > 0 and self.followed

    def invalidate(self) -> None:
        """Forget every page, and refuse to store pages computed before this call."""
        self._generation += 1
        self.invalidations += 1
        self._invalidated.inc()
        self._pages.clear()
        self._inflight.clear()  # later requests must not join a query that began before

    def lookup(self, key: str, *, count: bool = True) -> Page | None:
        """The fresh cached page for `key`, if any (no waiting, no computing); `count=False` when
        the caller may still refuse to serve it (then `served()` once it does)."""
        if not self.active:
            return None
        page = self._pages.get(key)
        if page is not None and page.expires > time.monotonic():
            if count:
                self.served()
            return page
        return None

    def served(self) -> None:
        """Count a hit."""
        self.hits += 1
        self._hit.inc()

    async def get(self, key: str, compute: Callable[[], Awaitable[tuple[bytes, str]]]) -> Page:
        """The cached page for `key`, or `compute()`'s result (stored unless invalidated meanwhile)."""
        if not self.active:
            self._bypassed.inc()
            body, etag = await compute()
            return Page(body, etag, 0.0)
        page = self.lookup(key)
        if page is not None:
            return page
        pending = self._inflight.get(key)
        if pending is not None:
            self.served()
            return await asyncio.shield(pending)
        self.misses += 1
        self._miss.inc()
        future: asyncio.Future[Page] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        generation = self._generation
        started = time.monotonic()  # the data is at least this old: the TTL counts from here
        try:
            body, etag = await compute()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: each waiter re-raises it itself
            raise
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]
        page = Page(body, etag, started + self.ttl_s)
        future.set_result(page)
        if generation == self._generation and self.followed:
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self.max_entries:
                self._pages.popitem(last=False)
        return page
