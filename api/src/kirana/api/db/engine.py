"""Async engine and session factory for the API and workers, with pool metrics.

`Database` is created once per process from settings (the app's lifespan, the worker's main) and
handed to whoever needs sessions. Services never commit; the caller that owns the unit of work does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from kirana.api import metrics
from kirana.api.db.urls import async_url


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 10,
        statement_timeout_ms: int = 15_000,
        application_name: str = "kirana-api",
    ) -> None:
        server_settings = {"application_name": application_name}
        if statement_timeout_ms:
            server_settings["statement_timeout"] = str(statement_timeout_ms)
        self.engine: AsyncEngine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args={"server_settings": server_settings},
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._instrument()

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

        event.listen(pool, "checkout", on_checkout)
        event.listen(pool, "checkin", on_checkin)
        event.listen(pool, "connect", on_connect)
        event.listen(pool, "close", on_close)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
