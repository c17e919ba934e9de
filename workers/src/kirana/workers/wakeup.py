"""Wakes the outbox relay the moment an outbox row commits, instead of it polling.

A statement-level trigger on `outbox_events` (migration c0ffee00de11) calls
`pg_notify('kirana_outbox', '')`; PostgreSQL delivers a notification only when the inserting
transaction commits, folds the identical ones of one transaction into one, and drops them with
a rollback, so a wake-up never announces an uncommitted event. One dedicated asyncpg
connection per worker LISTENs and sets `wake`; the relay loop waits on it with the poll
interval (`KIRANA_OUTBOX_POLL_S`) as a timeout, so a lost connection costs latency, never
events. The connection is pinged every `ping_s` and reopened when it fails; `wake` is set after
every (re)connect, because notifications sent while nobody listened are gone (the connection's
life is `kirana.api.db.listen.Listener`'s). Started by `kirana.workers.main.run`.
"""

from __future__ import annotations

import asyncio

from kirana.api.db.listen import Listener

CHANNEL = "kirana_outbox"
APPLICATION_NAME = "kirana-outbox-listener"


class OutboxWakeup(Listener):
    channel, application_name = CHANNEL, APPLICATION_NAME
    what, fallback = "outbox notifications", "the relay polls"

    def __init__(self, dsn: str, *, ping_s: float = 5.0, retry_s: float = 0.5) -> None:
        super().__init__(dsn, ping_s=ping_s, retry_s=retry_s)
        self.wake = asyncio.Event()

    async def start(self, *, wait_s: float = 2.0) -> None:
        await super().start(wait_s=wait_s)

    def notified(self, payload: str) -> None:  # noqa: ARG002 (the payload is empty)
        self.wake.set()

    def followed(self) -> None:
        self.wake.set()  # rows may have committed while nobody listened

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
