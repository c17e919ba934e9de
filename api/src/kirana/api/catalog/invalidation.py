"""Follow the catalog's PostgreSQL notifications and empty the listing cache on each one.

Started by the app's lifespan: one dedicated asyncpg connection per process that LISTENs on
`CHANNEL` (the triggers of migration c0ffee000002 notify it when a committed change alters what
a listing shows). The connection is checked every `ping_s` (a silently dead one, e.g. after a
network partition, is noticed within about 7 s); when it fails, the cache stops
serving (`followed` is cleared) and the listener reconnects, emptying the cache once it follows
again. It needs a session-level connection: behind a transaction-mode pooler such as PgBouncer,
point `KIRANA_DATABASE_URL` at PostgreSQL itself or turn the cache off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from kirana.api.catalog.listing_cache import ListingCache

log = logging.getLogger(__name__)

CHANNEL = "kirana_catalog"
APPLICATION_NAME = "kirana-catalog-listener"  # how the connection shows in pg_stat_activity


class CatalogListener:
    def __init__(self, dsn: str, cache: ListingCache, *, ping_s: float = 5.0, retry_s: float = 0.5) -> None:
        self.dsn = dsn
        self.cache = cache
        self.ping_s = ping_s
        self.retry_s = retry_s
        self.following = asyncio.Event()
        self.last_payload: str | None = None  # of the latest notification, in commit order
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, wait_s: float = 1.0) -> None:
        self._task = asyncio.create_task(self._run(), name="catalog-invalidations")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.following.wait(), wait_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.last_payload = payload
        self.cache.invalidate()

    async def _follow(self, conn: asyncpg.Connection) -> None:
        await conn.add_listener(CHANNEL, self._notified)
        self.cache.invalidate()  # anything may have changed while nobody listened
        self.cache.followed = True
        self.following.set()

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return when the connection is lost (closed, or a ping fails)."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.ping_s)
            if not lost.is_set():
                await conn.fetchval("SELECT 1", timeout=2)
        raise ConnectionError("the listening connection closed")

    async def _run(self) -> None:
        warned = False
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=5, server_settings={"application_name": APPLICATION_NAME}
                )
                await self._follow(conn)
                if warned:
                    log.info("catalog invalidations followed again; listing cache on")
                    warned = False
                await self._watch(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not warned:
                    log.warning(
                        "catalog invalidations unavailable; listing cache bypassed",
                        extra={"error": repr(exc)},
                    )
                    warned = True
            finally:
                self.cache.followed = False
                self.following.clear()
                self.cache.invalidate()
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(self.retry_s)
