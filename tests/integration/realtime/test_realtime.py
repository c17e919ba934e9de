"""Real time over real sockets: two API processes sharing one PostgreSQL and one Redis, events
written to the outbox and relayed by the real relay, clients from the `websockets` library."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from kirana.api.db.engine import Database
from kirana.api.outbox import service as outbox
from kirana.api.realtime import broker
from kirana.api.realtime.broker import Limits
from tests.integration.realtime.helpers import (
    Follower,
    emit,
    env,
    frame,
    make_accounts,
    open_socket,
    relay_all,
    subscribe,
    ticket,
    ws_url,
)
from tests.integration.servers import start_server

Servers = tuple[list[subprocess.Popen[bytes]], list[str]]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def two_servers(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Servers]:
    # A small send queue, so the slow consumer's 600 large frames overflow it soon, yet twice the
    # 30-frame bursts the ordering test sends at once (a busy machine may drain none meanwhile).
    e = env(database_url, redis_url, tmp_path, KIRANA_WS_SEND_QUEUE="64")
    started = [start_server(e, app_factory="kirana.api.asgi:factory") for _ in range(2)]
    procs = [p for p, _ in started]
    try:
        yield procs, [b for _, b in started]
    finally:
        _stop(procs)


async def _closed_with(ws_uri: str, **kwargs: object) -> tuple[int | None, str | None]:
    async with connect(ws_uri, open_timeout=30, **kwargs) as ws:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 20)
        return ws.close_code, ws.close_reason


async def test_bad_credentials_are_refused_with_1008(two_servers: Servers, database_url: str) -> None:
    _, (a, b) = two_servers
    [acc] = make_accounts(database_url, a, 1)
    assert (await _closed_with(ws_url(a)))[0] == 1008  # nothing at all
    code, reason = await _closed_with(ws_url(a, "not-a-ticket"))
    assert code == 1008 and reason is not None and "ticket" in reason
    code, _ = await _closed_with(ws_url(a), subprotocols=["kirana.v1", "bearer.garbage"])  # type: ignore[list-item]
    assert code == 1008
    # A ticket works once, on any replica.
    t = await ticket(a, acc.token)
    async with connect(ws_url(b, t), open_timeout=30) as ws:
        assert (await subscribe(ws, acc.channel))["type"] == "subscribed"
    assert (await _closed_with(ws_url(a, t)))[0] == 1008
    # A browser page from an origin not allowed.
    t = await ticket(a, acc.token)
    code, reason = await _closed_with(ws_url(a, t), origin="https://evil.example")  # type: ignore[arg-type]
    assert code == 1008 and reason is not None and "origin" in reason
    t = await ticket(a, acc.token)
    async with connect(ws_url(a, t), origin="https://shop.example", open_timeout=30) as ws:  # type: ignore[arg-type]
        assert (await subscribe(ws, acc.channel))["type"] == "subscribed"
    # The access token as subprotocol, with the protocol name echoed back.
    async with connect(
        ws_url(a),
        subprotocols=["kirana.v1", f"bearer.{acc.token}"],
        open_timeout=30,  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "kirana.v1"
        assert (await subscribe(ws, acc.channel))["type"] == "subscribed"


async def test_only_your_own_channels_and_stores_in_your_scope(
    two_servers: Servers, database_url: str
) -> None:
    _, (a, _b) = two_servers
    alice, bob = make_accounts(database_url, a, 2)
    [staff] = make_accounts(database_url, a, 1, role="support", scopes=["store:blr-1"])
    async with await open_socket(a, alice.token) as ws:
        refused = await subscribe(ws, bob.channel)
        assert refused["type"] == "error" and refused["code"] == "forbidden"
        assert refused["channel"] == bob.channel and "another customer" in refused["detail"]
        refused = await subscribe(ws, "store:blr-1:orders")
        assert refused["code"] == "forbidden" and "orders:read_all" in refused["detail"]
        await ws.send("{not json")
        assert (await frame(ws))["code"] == "bad-frame"
        await ws.send(json.dumps({"op": "ping"}))
        assert (await frame(ws))["type"] == "pong"
    async with await open_socket(a, staff.token) as ws:
        assert (await subscribe(ws, "store:blr-1:orders"))["type"] == "subscribed"
        other = await subscribe(ws, "store:del-2:orders")
        assert other["code"] == "forbidden" and "scope" in other["detail"]


async def test_committed_events_reach_sockets_on_both_processes_in_order(
    two_servers: Servers, database_url: str, redis_url: str
) -> None:
    _, (a, b) = two_servers
    [alice] = make_accounts(database_url, a, 1)
    [staff] = make_accounts(database_url, a, 1, role="support", scopes=["store:blr-1"])
    async with (
        await open_socket(a, alice.token) as on_a,
        await open_socket(b, alice.token) as on_b,
        await open_socket(b, staff.token) as store,
    ):
        for ws in (on_a, on_b):
            assert (await subscribe(ws, alice.channel))["seq"] == 0
        await subscribe(store, "store:blr-1:orders")
        await emit(database_url, alice.user_id, 30)
        db = Database(database_url)
        with pytest.raises(RuntimeError):
            async with db.session() as s:  # an order that rolled back is never announced
                outbox.emit(s, topic="order.status_changed", key="x", payload={"user_id": str(alice.user_id)})
                raise RuntimeError("rolled back")
        await db.dispose()
        assert await relay_all(database_url, redis_url) == 30
        for ws in (on_a, on_b, store):
            got = [await frame(ws) for _ in range(30)]
            assert [m["seq"] for m in got] == list(range(1, 31))
            assert [m["data"]["n"] for m in got] == list(range(30))
            assert {m["type"] for m in got} == {"order.status"} and all(m["time"] for m in got)
        with pytest.raises(TimeoutError):
            await frame(on_a, timeout=1)  # exactly once: nothing more


async def test_a_reconnecting_client_gets_what_it_missed_or_resync(
    two_servers: Servers, database_url: str, redis_url: str
) -> None:
    _, (a, b) = two_servers
    [alice] = make_accounts(database_url, a, 1)
    async with await open_socket(a, alice.token) as ws:
        epoch = (await subscribe(ws, alice.channel))["epoch"]
        await emit(database_url, alice.user_id, 3)
        await relay_all(database_url, redis_url)
        assert [(await frame(ws))["seq"] for _ in range(3)] == [1, 2, 3]
    await emit(database_url, alice.user_id, 5, start=3)  # while away
    await relay_all(database_url, redis_url)
    async with await open_socket(b, alice.token) as ws:
        resumed = await subscribe(ws, alice.channel, (epoch, 3))
        assert resumed["type"] == "subscribed" and resumed["recovered"] is True
        assert [(await frame(ws))["data"]["n"] for _ in range(5)] == [3, 4, 5, 6, 7]
    # Away for longer than the history holds (8 retained here; 20 published meanwhile).
    await emit(database_url, alice.user_id, 20, start=8)
    await relay_all(database_url, redis_url, history=Limits(history_size=8))
    async with await open_socket(a, alice.token) as ws:
        gone = await subscribe(ws, alice.channel, (epoch, 8))
        assert gone == {"type": "resync", "channel": alice.channel, "epoch": epoch, "seq": 28}
        # ...and a client within the retained window still recovers.
        near = await subscribe(ws, alice.channel, (epoch, 22))
        assert near["recovered"] is True
        assert [(await frame(ws))["seq"] for _ in range(6)] == [23, 24, 25, 26, 27, 28]
    # Redis lost the channel (restart without persistence): a new epoch, and resync.
    redis = Redis.from_url(redis_url)
    await redis.delete(*[f"{broker.PREFIX}{alice.channel}:{k}" for k in ("seq", "hist", "epoch")])
    await redis.aclose()
    async with await open_socket(b, alice.token) as ws:
        lost = await subscribe(ws, alice.channel, (epoch, 28))
        assert lost["type"] == "resync" and lost["epoch"] != epoch and lost["seq"] == 0


async def test_signing_out_closes_the_session_sockets_on_every_process(
    two_servers: Servers, database_url: str
) -> None:
    _, (a, b) = two_servers
    [alice] = make_accounts(database_url, a, 1)
    [other_session] = make_accounts(database_url, a, 1)
    async with (
        await open_socket(a, alice.token) as on_a,
        await open_socket(b, alice.token) as on_b,
        await open_socket(b, other_session.token) as bystander,
    ):
        for ws in (on_a, on_b, bystander):
            await subscribe(ws, ws is bystander and other_session.channel or alice.channel)
        async with httpx.AsyncClient(base_url=a, timeout=30) as client:
            r = await client.post("/v1/auth/logout", headers={"Authorization": f"Bearer {alice.token}"})
            if r.status_code == 404:
                r = await client.post("/v1/auth/logout", headers={"Authorization": f"Bearer {alice.token}"})
            assert r.status_code == 204, r.text
        for ws in (on_a, on_b):
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1008 and ws.close_reason == "session signed out"
        await bystander.send(json.dumps({"op": "ping"}))
        assert (await frame(bystander))["type"] == "pong"


async def test_a_client_that_stops_reading_is_disconnected(
    two_servers: Servers, database_url: str, redis_url: str
) -> None:
    _, (a, _b) = two_servers
    [alice] = make_accounts(database_url, a, 1)
    # max_queue=1 and a small read buffer: the client library stops reading from the socket.
    async with await open_socket(a, alice.token, max_queue=1, max_size=2**20) as slow:
        await subscribe(slow, alice.channel)
        for batch in range(6):
            await emit(database_url, alice.user_id, 100, start=batch * 100, pad=30_000)
            await relay_all(database_url, redis_url)
        received = 0
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(slow.recv(), 20)
                received += 1
        assert slow.close_code == 1013 and "slow consumer" in (slow.close_reason or "")
        assert received < 600
    async with await open_socket(a, alice.token) as fine:  # the account itself is not punished
        assert (await subscribe(fine, alice.channel))["type"] == "subscribed"


async def test_restarting_one_process_loses_nothing_and_duplicates_nothing(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    e = env(database_url, redis_url, tmp_path, KIRANA_DRAIN_SECONDS="2", KIRANA_SHUTDOWN_GRACE_SECONDS="5")
    first, a = start_server(e, app_factory="kirana.api.asgi:factory")
    second, b = start_server(e, app_factory="kirana.api.asgi:factory")
    procs = [first, second]
    try:
        accounts = make_accounts(database_url, a, 6)
        stop = asyncio.Event()
        followers = [Follower([a, b], acc.token, acc.channel) for acc in accounts]
        tasks = [asyncio.create_task(f.run(stop, turn=i)) for i, f in enumerate(followers)]
        async with asyncio.timeout(60):
            while not all(f.epoch for f in followers):
                await asyncio.sleep(0.1)
        per_user = 40
        relayed = 0

        async def publish() -> None:
            nonlocal relayed
            for i in range(per_user):
                for acc in accounts:
                    await emit(database_url, acc.user_id, 1, start=i)
                relayed += await relay_all(database_url, redis_url)
                await asyncio.sleep(0.1)

        publisher = asyncio.create_task(publish())
        await asyncio.sleep(0.8)
        first.send_signal(signal.SIGTERM)  # drain: every socket on it is asked to move (1012)
        assert await asyncio.to_thread(first.wait, 30) == 0
        first, a = start_server(e, app_factory="kirana.api.asgi:factory")  # the new pod
        procs.append(first)
        for f in followers:
            f.bases = [a, b]
        await publisher
        expected = list(range(1, per_user + 1))
        async with asyncio.timeout(60):
            while any(f.seqs != expected for f in followers):
                assert all(f.seqs == expected[: len(f.seqs)] for f in followers), [f.seqs for f in followers]
                await asyncio.sleep(0.1)
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert relayed == per_user * len(accounts)
        for f in followers:
            assert f.seqs == expected and f.numbers == list(range(per_user))
        moved = [f for f in followers if 1012 in f.close_codes]
        assert moved, "no client was connected to the restarted process"
    finally:
        _stop(procs)


def test_asyncapi_document_is_served(two_servers: Servers) -> None:
    _, (a, _b) = two_servers
    doc = httpx.get(a + "/asyncapi.json", timeout=30).json()
    assert doc["asyncapi"].startswith("3.")
    messages = doc["channels"]["socket"]["messages"]
    assert {"order_status", "payment_result", "resync", "subscribed", "error", "subscribe"} <= set(messages)
    assert {"delivery_position", "delivery_status", "order_eta"} <= set(messages)
    assert "delivery:<order id>" in doc["info"]["description"]
