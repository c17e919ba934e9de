"""Pooled connections are pinged only after sitting idle, and a dead one is replaced unseen."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from kirana.api.db.engine import Database


def _kill_backends(database_url: str, application_name: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


async def _pid(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)


async def test_an_idle_connection_killed_by_the_server_is_replaced(database_url: str) -> None:
    db = Database(
        database_url, pool_size=1, max_overflow=0, application_name="ping-idle", ping_after_idle_s=0
    )
    try:
        first = await _pid(db)
        assert _kill_backends(database_url, "ping-idle") == 1
        assert await _pid(db) != first  # pinged on checkout, found dead, reconnected
    finally:
        await db.dispose()


async def test_a_connection_in_steady_use_is_not_pinged(database_url: str) -> None:
    db = Database(
        database_url, pool_size=1, max_overflow=0, application_name="ping-busy", ping_after_idle_s=3600
    )
    try:
        await _pid(db)
        assert _kill_backends(database_url, "ping-busy") == 1
        with pytest.raises(DBAPIError):  # no ping round trip: the statement meets the dead socket
            await _pid(db)
        assert await _pid(db) > 0  # and the pool has already healed
    finally:
        await db.dispose()
