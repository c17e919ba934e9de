"""Waiting on the page caches' notifications (`kirana.api.catalog.invalidation`) in tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import psycopg
from fastapi import FastAPI

from kirana.api.catalog.invalidation import APPLICATION_NAME, CHANNEL, CatalogListener
from kirana.api.db.urls import libpq_url
from kirana.api.settings import Settings


async def until(predicate: Callable[[], object], timeout: float = 3.0) -> float:
    """Seconds until `predicate()` is true (fails after `timeout`)."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "timed out"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def settled(app: FastAPI, settings: Settings) -> None:
    """Return once the setup's own notifications have reached the caches.

    PostgreSQL hands each listener its notifications in commit order, so once a fence sent now
    has arrived, every change committed before it has already emptied the caches; none can
    arrive late and empty them in the middle of a test.
    """
    listener: CatalogListener = app.state.catalog_listener
    await until(lambda: all(cache.followed for cache in listener.caches))
    fence = f"fence-{uuid.uuid4()}"
    with psycopg.connect(libpq_url(settings.database_url), autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, fence))
    await until(lambda: listener.last_payload == fence)


def kill_listener(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Terminate this database's catalog listening connection (as a failover or a DBA would)."""
    killed = conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = %s AND datname = current_database()",
        (APPLICATION_NAME,),
    ).fetchall()
    assert killed == [(True,)]
