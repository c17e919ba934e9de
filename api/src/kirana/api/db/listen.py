"""Follow a PostgreSQL notification channel on one dedicated connection, whatever happens to it.

PostgreSQL delivers a NOTIFY only when the sending transaction commits, in commit order, and
drops it with a rollback; a listener that is not connected at that moment never gets it. So
`Listener` keeps one asyncpg connection LISTENing on `channel`, pings it every `ping_s` (a
silently dead one, e.g. after a network partition, is noticed within about `ping_s` + 2 s),
and reconnects every `retry_s` when it fails. Subclasses say what a notification means
(`notified`), what to do once following again (`followed`: anything may have changed while
nobody listened) and when not following (`lost`). It needs a session-level connection: behind a
transaction-mode pooler such as PgBouncer, point the URL at PostgreSQL itself.

Used by the API's catalog listener (`kirana.api.catalog.invalidation`) and the workers' outbox
wake-up (`kirana.workers.wakeup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg


class Listener:
    channel: str
    application_name: str  # how the connection shows in pg_stat_activity
    what: str  # for the log: "catalog invalidations", "outbox notifications"
    fallback: str  # what the process does meanwhile, for the log: "the relay polls"

    def __init__(self, dsn: str, *, ping_s: float = 5.0, retry_s: float = 0.5) -> None:
        self.dsn = dsn
        self.ping_s = ping_s
        self.retry_s = retry_s
        self.following = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._log = logging.getLogger(type(self).__module__)

    def notified(self, payload: str) -> None:
        """A committed transaction notified the channel."""

    def followed(self) -> None:
        """Listening (again): notifications sent while nobody listened are gone."""

    def lost(self) -> None:
        """Not listening any more (until `followed` again)."""

    async def start(self, *, wait_s: float = 1.0) -> None:
        """Start following; waits up to `wait_s` for the first connection (never fails)."""
        self._task = asyncio.create_task(self._run(), name=f"listen-{self.channel}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.following.wait(), wait_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.notified(payload)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return (raising) when the connection is lost: closed, or a ping fails."""
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
                    self.dsn, timeout=5, server_settings={"application_name": self.application_name}
                )
                await conn.add_listener(self.channel, self._on_notify)
                self.followed()
                self.following.set()
                if warned:
                    self._log.info(f"{self.what} followed again")
                    warned = False
                await self._watch(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not warned:
                    self._log.warning(f"{self.what} unavailable; {self.fallback}", extra={"error": repr(exc)})
                    warned = True
            finally:
                self.following.clear()
                self.lost()
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(self.retry_s)
