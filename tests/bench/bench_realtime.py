"""Real-time benchmark (`make bench only=realtime`): connections (idle sockets held per API
process, their memory and how fast they opened), then fan-out (every event reaches every
subscribed socket) with commit-to-client latency p50/p95/p99 and delivered messages/s, each
beside a bare Starlette WebSocket broadcast fed by Redis pub/sub and beside Centrifugo (the
pinned release, built when missing: tests/bench/realtime_peer.py), all three driven by the same
`websockets` clients, socket counts and events in the same run.

Kirana's path is the real one: outbox rows committed in PostgreSQL, the workers' relay
(`python -m kirana.workers`, woken by the outbox NOTIFY), the Lua publish, the API hub, the
socket. Sockets belong to several accounts (at most `PER_ACCOUNT` each: the per-user cap), each
following its own orders channel; one event is one transaction with a row per account, so each
event fans out to every socket. The bare path is one PUBLISH and a loop over sockets. `measure`
takes the sizes, so a tiny load can check that it runs; the clients share one process, so at
size they, not the server, may set the ceiling (see the notes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect

from kirana.api.db.engine import Database
from kirana.api.db.lifecycle import Lifecycle
from kirana.api.devstack import EmbeddedPostgres, EmbeddedRedis, free_port
from kirana.api.outbox import service as outbox
from tests.bench import realtime_peer
from tests.bench.harness import REPO, Result, stop, wait_http
from tests.integration.realtime.helpers import make_accounts

BARE_CHANNEL = "bench:bare"
PER_ACCOUNT = 1000  # KIRANA_WS_MAX_PER_USER's ceiling
# (n, live) -> n open sockets: following their channels when live, idle (signed in) when not.
Opener = Callable[[int, bool], Awaitable[list[Any]]]


# -- the bare baseline: Redis pub/sub straight to every socket --------------------------------
_bare_sockets: set[WebSocket] = set()


async def _bare_endpoint(ws: WebSocket) -> None:
    await ws.accept()
    _bare_sockets.add(ws)
    try:
        while True:
            await ws.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        _bare_sockets.discard(ws)


async def _bare_feed() -> None:
    redis = Redis.from_url(os.environ["KIRANA_REDIS_URL"])
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(BARE_CHANNEL)
    async for msg in pubsub.listen():
        if msg.get("type") == "message":
            text = msg["data"].decode()
            for ws in list(_bare_sockets):
                try:
                    await ws.send_text(text)
                except Exception:
                    _bare_sockets.discard(ws)


@contextlib.asynccontextmanager
async def _bare_lifespan(_app: Starlette) -> AsyncIterator[None]:
    feed = asyncio.create_task(_bare_feed())
    yield
    feed.cancel()


bare_app = Starlette(routes=[WebSocketRoute("/v1/ws", _bare_endpoint)], lifespan=_bare_lifespan)


# -- processes -----------------------------------------------------------------------------------
def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        env=os.environ | env | {"PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kirana(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return _spawn([sys.executable, "-m", "kirana.api", "serve", "--port", str(port), "--workers", "1"], env)


def _bare(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    code = (
        "import uvicorn; uvicorn.run('tests.bench.bench_realtime:bare_app', "
        f"port={port}, loop='uvloop', http='httptools', ws='websockets-sansio', "
        "ws_per_message_deflate=False, log_level='warning')"
    )
    return _spawn([sys.executable, "-c", code], env)


async def _listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {proc.returncode}")
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def _rss_kib(proc: subprocess.Popen[bytes]) -> float:
    return float(psutil.Process(proc.pid).memory_info().rss) / 1024


# -- clients -----------------------------------------------------------------------------------
async def _open(
    url: str, n: int, subprotocols: list[list[str]], channels: list[str | None]
) -> list[ClientConnection]:
    """`n` sockets; socket i offers `subprotocols[i % len]` and follows `channels[i % len]`."""
    sem = asyncio.Semaphore(200)

    async def one(i: int) -> ClientConnection:
        offered = subprotocols[i % len(subprotocols)] if subprotocols else []
        subscribe = channels[i % len(channels)] if channels else None
        async with sem:
            ws = await connect(url, subprotocols=offered or None, open_timeout=120, compression=None)  # type: ignore[arg-type]
            if subscribe:
                await ws.send(json.dumps({"op": "subscribe", "channel": subscribe}))
                first = json.loads(await ws.recv())
                assert first["type"] == "subscribed", first
            return ws

    return list(await asyncio.gather(*[one(i) for i in range(n)]))


async def _receive(ws: ClientConnection, count: int, latencies: list[float], done: list[float]) -> None:
    for _ in range(count):
        msg = json.loads(await asyncio.wait_for(ws.recv(), 120))
        latencies.append(time.time() - float(msg["data"]["t"]))
    done.append(time.time())


async def _fan_out(
    sockets: list[Any], events: int, publish: Any, rate_per_s: float, receive: Any = _receive
) -> dict[str, float]:
    latencies: list[float] = []
    done: list[float] = []
    readers = [asyncio.create_task(receive(ws, events, latencies, done)) for ws in sockets]
    t0 = time.time()
    for i in range(events):
        await publish(i)
        await asyncio.sleep(max(0.0, t0 + (i + 1) / rate_per_s - time.time()))
    await asyncio.gather(*readers)
    lat = sorted(latencies)
    elapsed = max(done) - t0

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(len(lat) * q))] * 1000

    return {
        "n": len(lat),
        "p50_ms": statistics.median(lat) * 1000,
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": lat[-1] * 1000,
        "messages_per_s": len(lat) / elapsed,
    }


async def _side(
    proc: subprocess.Popen[bytes],
    opener: Opener,
    *,
    idle: int,
    sockets: int,
    events: int,
    rate: float,
    publish: Any,
    receive: Any = _receive,
) -> dict[str, float]:
    before = _rss_kib(proc)
    t0 = time.monotonic()
    held = await opener(idle, False)
    connect_s = time.monotonic() - t0
    await asyncio.sleep(1)
    per_socket = (_rss_kib(proc) - before) / max(idle, 1)
    for ws in held:
        await ws.close()
    await asyncio.sleep(1)  # the server unregisters them (the per-user cap counts open sockets)
    live = await opener(sockets, True)
    try:
        figures = await _fan_out(live, events, publish, rate, receive)
    finally:
        await asyncio.gather(*[ws.close() for ws in live], return_exceptions=True)
    return {
        "idle_sockets": idle,
        "kib_per_idle_socket": per_socket,
        "connects_per_s": idle / connect_s if connect_s else 0.0,
        "fan_out": sockets,
        **figures,
    }


async def measure(
    base_dir: Path,
    *,
    idle: int,
    sockets: int,
    events: int,
    rate: float = 20,
    centrifugo: Path | None = None,
) -> dict[str, Any]:
    """Kirana's and the bare figures, and Centrifugo's when its binary is given (`realtime_peer`)."""
    pg = EmbeddedPostgres(base_dir / "pg", durable=False)
    redis_server = EmbeddedRedis(base_dir / "redis", durable=False)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        db_url = pg.start()
        redis_url = redis_server.start()
        Lifecycle(db_url).migrate()
        env = {
            "KIRANA_DATABASE_URL": db_url,
            "KIRANA_REDIS_URL": redis_url,
            "KIRANA_DATA_DIR": str(base_dir / "data"),
            "KIRANA_ENVIRONMENT": "test",
            "KIRANA_LOG_LEVEL": "WARNING",
            "KIRANA_DRAIN_SECONDS": "0",
            "KIRANA_WS_MAX_PER_USER": str(PER_ACCOUNT),
            "KIRANA_WS_SEND_QUEUE": str(max(256, events * 2)),
        }
        port, bare_port = free_port(), free_port()
        api = _kirana(port, env)
        bare = _bare(bare_port, env)
        workers = _spawn([sys.executable, "-m", "kirana.workers"], env)
        procs += [api, bare, workers]
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/readyz", api, timeout=120)
        accounts = make_accounts(db_url, base, max(1, math.ceil(max(idle, sockets) / PER_ACCOUNT)))
        db = Database(db_url)
        redis = Redis.from_url(redis_url)

        async def commit_timed(i: int) -> None:
            async with db.session() as s:
                # `t` is taken just before the commit: the latency covers commit to client.
                t = time.time()
                for acc in accounts:
                    payload: dict[str, Any] = {"user_id": str(acc.user_id), "n": i, "t": t}
                    outbox.emit(s, topic="order.status_changed", key=f"{i}:{acc.user_id}", payload=payload)

        async def bare_publish(i: int) -> None:
            data = {"n": i, "t": time.time()}
            await redis.publish(BARE_CHANNEL, json.dumps({"data": data}))

        sizes: dict[str, Any] = {"idle": idle, "sockets": sockets, "events": events, "rate": rate}
        ws_url = base.replace("http", "ws") + "/v1/ws"
        offers = [["kirana.v1", f"bearer.{acc.token}"] for acc in accounts]
        follow: list[str | None] = [acc.channel for acc in accounts]
        kirana = await _side(
            api,
            lambda n, live: _open(ws_url, n, offers, follow if live else [None]),
            publish=commit_timed,
            **sizes,
        )
        await _listening(bare_port, bare)
        bare_url = f"ws://127.0.0.1:{bare_port}/v1/ws"
        bare_figures = await _side(
            bare, lambda n, _live: _open(bare_url, n, [], [None]), publish=bare_publish, **sizes
        )
        figures = {"kirana": kirana, "bare": bare_figures}
        if centrifugo is not None:
            peer = realtime_peer.Server(centrifugo, base_dir / "centrifugo", free_port(), redis_url)
            procs.append(peer.proc)
            peer.wait_ready()
            tokens = [peer.token(acc.user_id) for acc in accounts]
            peer_channels = [realtime_peer.channel(acc.user_id) for acc in accounts]
            peer_follow: list[str | None] = list(peer_channels)

            async def peer_publish(i: int) -> None:
                await peer.broadcast(peer_channels, {"n": i, "t": time.time()})

            try:
                await peer.open_api()
                figures["centrifugo"] = await _side(
                    peer.proc,
                    lambda n, live: realtime_peer.open_sockets(
                        peer.ws_url, n, tokens, peer_follow if live else [None]
                    ),
                    publish=peer_publish,
                    receive=realtime_peer.receive,
                    **sizes,
                )
            finally:
                await peer.aclose()
        await redis.aclose()
        await db.dispose()
        return figures
    finally:
        for proc in procs:
            stop(proc)
        redis_server.stop()
        pg.stop()


def run() -> list[Result]:
    """The figures as `make bench` results (tests/bench/run.py): each beside the bare broadcast,
    then beside Centrifugo (its binary built first when missing)."""
    idle = int(os.environ.get("KIRANA_BENCH_WS_IDLE", "20000"))
    sockets = int(os.environ.get("KIRANA_BENCH_WS_SOCKETS", "5000"))
    events = int(os.environ.get("KIRANA_BENCH_WS_EVENTS", "100"))
    rate = float(os.environ.get("KIRANA_BENCH_WS_RATE", "10"))
    peer = realtime_peer.binary()
    base_dir = Path(tempfile.mkdtemp(prefix="kirana-bench-ws-"))
    r = asyncio.run(measure(base_dir, idle=idle, sockets=sockets, events=events, rate=rate, centrifugo=peer))
    k, b, c = r["kirana"], r["bare"], r["centrifugo"]
    cf = realtime_peer.name()
    clients = "clients: one Python process of `websockets` on the same machine"

    def lat(x: dict[str, float]) -> str:
        return f"{x['p50_ms']:.1f} / {x['p95_ms']:.1f} / {x['p99_ms']:.1f}"

    latency = (
        f"p50 / p95 / p99 {lat(k)} ms (bare {lat(b)}, {cf} {lat(c)}); "
        f"{events} events at {rate}/s to {sockets} sockets, n={k['n']}"
    )
    opened = (
        f"opened at {k['connects_per_s']:.0f}/s "
        f"(bare {b['connects_per_s']:.0f}/s, {cf} {c['connects_per_s']:.0f}/s)"
    )
    clock = f"{cf}'s clock starts at its /api/broadcast call, Kirana's before its commit"
    bare_fan_out = "bare Redis PUBLISH to Starlette broadcast"
    # metric, figure, unit, digits, target, met, bare name, notes beside bare, beside Centrifugo
    rows: list[tuple[str, str, str, int | None, str, bool, str, str, str]] = [
        (
            f"idle sockets on one API process ({idle})",
            "kib_per_idle_socket",
            "KiB/socket",
            1,
            "< 50 KiB at >= 20,000",
            idle >= 20_000 and k["kib_per_idle_socket"] < 50,
            "bare Starlette WebSocket",
            opened,
            f"{opened}; {realtime_peer.SETUP}",
        ),
        (
            f"commit to client p99, fan-out to {sockets} sockets",
            "p99_ms",
            "ms",
            1,
            "< 100 ms",
            k["p99_ms"] < 100,
            bare_fan_out,
            f"{latency}; {clients}",
            f"{latency}; {clock}; {cf} set up as in the idle row; {clients}",
        ),
        (
            f"messages delivered/s, fan-out to {sockets} sockets",
            "messages_per_s",
            "msg/s",
            None,
            ">= 20000",
            k["messages_per_s"] >= 20_000,
            bare_fan_out,
            clients,
            f"{cf} set up as in the idle row; {clients}",
        ),
    ]
    results = []
    for metric, key, unit, digits, target, met, bare_name, bare_notes, peer_notes in rows:
        for suffix, other, other_name, notes in (
            ("", b, bare_name, bare_notes),
            (", beside Centrifugo", c, cf, peer_notes),
        ):
            results.append(
                Result(
                    "realtime",
                    metric + suffix,
                    round(k[key], digits),
                    unit,
                    target=target,
                    meets_target=met,
                    baseline=round(other[key], digits),
                    baseline_name=other_name,
                    notes=notes,
                )
            )
    results[0].extra = {"kirana": k, "bare": b, "centrifugo": c}
    return results
