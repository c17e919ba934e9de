"""The workers' relay wakes on the outbox's NOTIFY: a committed event reaches a socket promptly
even with a 10 s poll, and the poll still delivers what no notification announced.

Real processes: one API server, one `python -m kirana.workers`, a `websockets` client. The
bounds are generous (1 s against a 10 s poll): they tell a woken relay from a polling one,
they do not time it (`make bench only=realtime` does).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from kirana.api.db.engine import Database
from kirana.api.db.urls import libpq_url
from kirana.api.outbox import service as outbox
from kirana.workers.wakeup import APPLICATION_NAME
from tests.integration.realtime.helpers import env, frame, make_accounts, open_socket, subscribe
from tests.integration.servers import REPO, start_server

POLL_S = 10.0


def _worker(e: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kirana.workers"],
        env=os.environ | e | {"PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _listening(database_url: str, proc: subprocess.Popen[bytes]) -> None:
    """Until the worker's listening connection shows in pg_stat_activity."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the worker exited"
        with psycopg.connect(libpq_url(database_url)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = %s AND datname = current_database()",
                (APPLICATION_NAME,),
            ).fetchone()
        if row and row[0]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the worker never listened")


async def _commit(database_url: str, user_id: uuid.UUID, n: int, *, notify: bool = True) -> float:
    """Commit one order event for `user_id`; returns the monotonic time right after commit.
    `notify=False` disables the outbox trigger for that transaction (replica role), so only
    the relay's poll can find the event."""
    db = Database(database_url)
    try:
        async with db.session() as s:
            if not notify:
                await s.execute(text("SET LOCAL session_replication_role = replica"))
            payload = {"order_id": str(uuid.uuid4()), "user_id": str(user_id), "n": n}
            outbox.emit(s, topic="order.status_changed", key=payload["order_id"], payload=payload)
        return time.monotonic()
    finally:
        await db.dispose()


async def test_a_commit_wakes_the_relay_and_the_poll_is_the_fallback(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    e = env(database_url, redis_url, tmp_path, KIRANA_OUTBOX_POLL_S=str(POLL_S))
    api, base = start_server(e, app_factory="kirana.api.asgi:factory")
    worker = _worker(e)
    try:
        [alice] = make_accounts(database_url, base, 1)
        await _listening(database_url, worker)
        async with await open_socket(base, alice.token) as ws:
            assert (await subscribe(ws, alice.channel))["type"] == "subscribed"
            await asyncio.sleep(1.0)  # past the relay's start-up passes: it now sleeps for 10 s
            for n in range(3):
                committed = await _commit(database_url, alice.user_id, n)
                msg = await frame(ws, timeout=POLL_S * 2)
                waited = time.monotonic() - committed
                assert msg["data"]["n"] == n
                assert waited < 1.0, f"event {n} took {waited:.2f} s: the relay was not woken"
                await asyncio.sleep(0.3)
            # No notification: the relay sleeps on; its poll finds the event.
            silent = await _commit(database_url, alice.user_id, 3, notify=False)
            with pytest.raises(TimeoutError):
                await frame(ws, timeout=1.5)
            msg = await frame(ws, timeout=POLL_S + 5)
            assert msg["data"]["n"] == 3 and time.monotonic() - silent > 1.5
            committed = await _commit(database_url, alice.user_id, 4)
            assert (await frame(ws, timeout=POLL_S * 2))["data"]["n"] == 4
            assert time.monotonic() - committed < 1.0
    finally:
        for proc in (worker, api):
            proc.terminate()
        for proc in (worker, api):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
