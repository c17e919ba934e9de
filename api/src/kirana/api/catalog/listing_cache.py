"""A short-lived, per-process cache of public catalog listing pages (body + ETag).

Used by the catalog router for anonymous-equivalent listings (drafts are never cached). The
staleness bound is explicit and small:

- a page is served from the cache for at most `ttl_s` seconds (`KIRANA_CATALOG_LISTING_CACHE_S`,
  default 2 s; 0 disables the cache). That bounds every change made elsewhere: stock taken by
  orders, and catalog edits served by another API process;
- a catalog write served by this process (staff CRUD, publish, stock adjustments) empties the
  cache when it starts and again after it commits, and a page computed while the write was in
  flight is not stored, so this process never serves a page older than its own committed writes.

Concurrent misses for one page share a single database query (no stampede when a page expires).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    body: bytes
    etag: str
    expires: float


class ListingCache:
    def __init__(self, ttl_s: float, *, max_entries: int = 2048) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._pages: OrderedDict[str, Page] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[Page]] = {}
        self._generation = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def invalidate(self) -> None:
        """Forget every page, and refuse to store pages computed before this call."""
        self._generation += 1
        self._pages.clear()
        self._inflight.clear()  # later requests must not join a query that began before

    async def get(self, key: str, compute: Callable[[], Awaitable[tuple[bytes, str]]]) -> Page:
        """The cached page for `key`, or `compute()`'s result (stored unless invalidated meanwhile)."""
        now = time.monotonic()
        page = self._pages.get(key)
        if page is not None and page.expires > now:
            self.hits += 1
            return page
        pending = self._inflight.get(key)
        if pending is not None:
            self.hits += 1
            return await asyncio.shield(pending)
        self.misses += 1
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
        if generation == self._generation:
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self.max_entries:
                self._pages.popitem(last=False)
        return page
