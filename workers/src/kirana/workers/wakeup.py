"""Wakes the outbox relay the moment an outbox row commits, instead of it polling.

A statement-level trigger on `outbox_events` (migration c0ffee00de11) calls
`pg_notify('kirana_outbox', '')`; PostgreSQL delivers a notification only when the inserting
transaction commits, folds the identical ones of one transaction into one, and drops them with
a rollback, so a wake-up never announces an uncommitted event. One dedicated asyncpg
connection per worker LISTENs and sets `wake`; the relay loop waits on it with the poll
interval (`KIRANA_OUTBOX_POLL_S`) as a timeout, so a lost connection costs latency, never
events. The connection is pinged every `ping_s` and reopened when it fails; `wake` is set after
every (re)connect, because notifications sent while nobody listened are gone. It needs a
session-level connection (not a transaction-mode PgBouncer), like the catalog listener.
Started by `kirana.workers.main.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

log = logging.getLogger("kirana.workers.wakeup")

CHANNEL = "kirana_outbox"
APPLICATION_NAME = "kirana-outbox-listener"


class OutboxWakeup:
    def __init__(self, dsn: str, *, ping_s: float = 5.0, retry_s: float = 0.5) -> None:
        self.dsn = dsn
        self.ping_s = ping_s
        self.retry_s = retry_s
        self.wake = asyncio.Event()
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, wait_s: float = 2.0) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-wakeup")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), wait_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self, timeout_s: float, stop: asyncio.Event) -> bool:
        """Until a commit was notified (True), `stop` is set or `timeout_s` passed (False)."""
        waits = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            return self.wake.is_set()
        finally:
            for w in waits:
                w.cancel()
            self.wake.clear()

    def _notified(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self.wake.set()

    async def _watch(self, conn: asyncpg.Connection) -> None:
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
                await conn.add_listener(CHANNEL, self._notified)
                self.listening.set()
                self.wake.set()  # rows may have committed while nobody listened
                if warned:
                    log.info("outbox notifications followed again")
                    warned = False
                await self._watch(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not warned:
                    log.warning(
                        "outbox notifications unavailable; the relay polls", extra={"error": repr(exc)}
                    )
                    warned = True
            finally:
                self.listening.clear()
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(self.retry_s)
