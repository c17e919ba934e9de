"""Async engine and session factory for the API and workers, with pool metrics.

`Database` is created once per process from settings (the app's lifespan, the worker's main) and
handed to whoever needs sessions. Services never commit; the caller that owns the unit of work does.

A connection is pinged on checkout only when it sat idle in the pool for `ping_after_idle_s`
(SQLAlchemy's `pool_pre_ping` pings on every checkout: one extra round trip per request). A
connection that broke while in steady use fails its statement instead; SQLAlchemy then
invalidates it, and every pooled connection older than it, so the pool heals at once.

`hot()` is a second, small pool of plain asyncpg connections (`hot_pool_size`, opened on first
use, so a process that never needs it holds none) for single statements that are atomic alone
on the busiest paths (webhook ingestion, the leaderboard names; `db.raw.Statement.*_alone`):
there SQLAlchemy's connection checkout, which runs through greenlets, costs more than the
statement. Both pools count in the pool-limit gauge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from kirana.api import metrics
from kirana.api.db.urls import async_url, libpq_url

_CHECKED_IN = "kirana_checked_in_at"


async def _nothing_to_reset(_conn: asyncpg.Connection) -> None:
    """The hot pool runs single statements only, each its own transaction: no session state
    (locks, cursors, LISTEN, SET) outlives one, so asyncpg's reset round trip on every release
    would buy nothing."""


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 10,
        statement_timeout_ms: int = 15_000,
        application_name: str = "kirana-api",
        ping_after_idle_s: float = 10.0,
        hot_pool_size: int = 4,
    ) -> None:
        self.ping_after_idle_s = ping_after_idle_s
        server_settings = {"application_name": application_name}
        if statement_timeout_ms:
            server_settings["statement_timeout"] = str(statement_timeout_ms)
        self._hot_dsn = libpq_url(url)
        self._hot_settings = server_settings
        self._hot_size = hot_pool_size
        self._hot: asyncpg.Pool | None = None
        self._hot_lock = asyncio.Lock()
        self.engine: AsyncEngine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=False,  # see _ping_if_idle
            pool_recycle=1800,
            connect_args={"server_settings": server_settings},
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._instrument()
        self._pool_limit = pool_size + max_overflow
        metrics.DB_POOL_LIMIT.inc(self._pool_limit)

    def _instrument(self) -> None:
        pool = self.engine.sync_engine

        def on_checkout(*_: Any) -> None:
            metrics.DB_POOL_CHECKED_OUT.inc()

        def on_checkin(*_: Any) -> None:
            metrics.DB_POOL_CHECKED_OUT.dec()

        def on_connect(*_: Any) -> None:
            metrics.DB_POOL_SIZE.inc()

        def on_close(*_: Any) -> None:
            metrics.DB_POOL_SIZE.dec()

        def stamp_checkin(_dbapi: Any, record: Any) -> None:
            if record is not None:
                record.info[_CHECKED_IN] = time.monotonic()

        event.listen(pool, "checkout", on_checkout)
        event.listen(pool, "checkout", self._ping_if_idle)
        event.listen(pool, "checkin", on_checkin)
        event.listen(pool, "checkin", stamp_checkin)
        event.listen(pool, "connect", on_connect)
        event.listen(pool, "close", on_close)

    def _ping_if_idle(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_CHECKED_IN)
        if idle_since is None or time.monotonic() - idle_since < self.ping_after_idle_s:
            return  # brand new, or in steady use
        try:
            dbapi_connection.ping()
        except Exception as error:
            # The pool discards this connection and checks out (or opens) another.
            raise exc.DisconnectionError(f"stale pooled connection: {error!r}") from error

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection in autocommit mode: each statement is its own transaction and one round
        trip (no BEGIN/COMMIT around it). For reads, and single statements that are atomic alone."""
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def read_only(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a READ ONLY transaction (committed on exit): for reads of several
        statements that set planner settings with `SET LOCAL` for themselves alone."""
        async with self.engine.connect() as conn:
            ro = await conn.execution_options(postgresql_readonly=True)
            async with ro.begin():
                yield ro

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def hot(self) -> asyncpg.Pool:
        """The plain asyncpg pool (see the module docstring), opened on first use."""
        if self._hot is None:
            async with self._hot_lock:
                if self._hot is None:
                    self._hot = await asyncpg.create_pool(
                        self._hot_dsn,
                        min_size=1,
                        max_size=self._hot_size,
                        server_settings=self._hot_settings,
                        max_inactive_connection_lifetime=300,
                        reset=_nothing_to_reset,
                    )
                    metrics.DB_POOL_LIMIT.inc(self._hot_size)
                    self._pool_limit += self._hot_size
        return self._hot

    async def dispose(self) -> None:
        if self._hot is not None:
            await self._hot.close()
            self._hot = None
        await self.engine.dispose()
        metrics.DB_POOL_LIMIT.dec(self._pool_limit)
        self._pool_limit = 0
