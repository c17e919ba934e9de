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
takes the sizes, so a tiny load can check that it runs. The clients run in several processes
(tests/bench/ws_fleet.py): in one, at size, they and not the server would set the ceiling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import resource
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

from kirana.api.db.engine import Database
from kirana.api.db.lifecycle import Lifecycle
from kirana.api.devstack import EmbeddedPostgres, EmbeddedRedis, free_port
from kirana.api.outbox import service as outbox
from tests.bench import realtime_peer, ws_fleet
from tests.bench.harness import REPO, Result, stop, wait_http
from tests.integration.realtime.helpers import make_accounts

BARE_CHANNEL = "bench:bare"
PER_ACCOUNT = 1000  # KIRANA_WS_MAX_PER_USER's ceiling
FD_MARGIN = 300  # descriptors a server keeps besides its sockets (files, database, Redis, epoll)
# (n, live) -> n open sockets: following their channels when live, idle (signed in) when not.
Opener = Callable[[int, bool], Awaitable[ws_fleet.Fleet]]


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
def _fleet(protocol: str, url: str, **lists: list[Any]) -> Opener:
    """An opener of `protocol`'s sockets spread over client processes (tests/bench/ws_fleet.py);
    `lists` give each socket its offers, tokens and (when live) channel, round robin."""
    channels = lists.pop("channels", [None])

    async def opener(n: int, live: bool) -> ws_fleet.Fleet:
        fleet = ws_fleet.Fleet(protocol, url, n, channels=channels if live else [None], **lists)
        return await fleet.open()

    return opener


async def _fan_out(fleet: ws_fleet.Fleet, events: int, publish: Any, rate_per_s: float) -> dict[str, float]:
    reading = await fleet.receiving(events)
    t0 = time.time()
    for i in range(events):
        await publish(i)
        await asyncio.sleep(max(0.0, t0 + (i + 1) / rate_per_s - time.time()))
    latencies, done = await reading
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


def idle_ceiling(wanted: int) -> int:
    """The idle sockets one server process can hold here: `wanted`, or fewer when the machine's
    open-file limit per process (the hard `RLIMIT_NOFILE`, which servers inherit) is lower; the
    server keeps `FD_MARGIN` descriptors for its own files, database and Redis."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    limit = hard if hard != resource.RLIM_INFINITY else wanted + FD_MARGIN
    return min(wanted, limit - FD_MARGIN)


async def _side(
    proc: subprocess.Popen[bytes],
    opener: Opener,
    *,
    idle: int,
    sockets: int,
    events: int,
    rate: float,
    publish: Any,
) -> dict[str, float]:
    before = _rss_kib(proc)
    held = await opener(idle, False)
    await asyncio.sleep(1)
    per_socket = (_rss_kib(proc) - before) / max(idle, 1)
    await held.close()
    await asyncio.sleep(1)  # the server unregisters them (the per-user cap counts open sockets)
    live = await opener(sockets, True)
    try:
        figures = await _fan_out(live, events, publish, rate)
    finally:
        await live.close()
    return {
        "idle_sockets": idle,
        "kib_per_idle_socket": per_socket,
        "connects_per_s": idle / held.connect_s if held.connect_s else 0.0,
        "fan_out": sockets,
        "client_processes": len(live.procs),
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
            _fleet("kirana", ws_url, offers=offers, channels=follow),
            publish=commit_timed,
            **sizes,
        )
        await _listening(bare_port, bare)
        bare_url = f"ws://127.0.0.1:{bare_port}/v1/ws"
        bare_figures = await _side(bare, _fleet("bare", bare_url), publish=bare_publish, **sizes)
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
                    _fleet("centrifugo", peer.ws_url, tokens=tokens, channels=peer_follow),
                    publish=peer_publish,
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
    wanted = int(os.environ.get("KIRANA_BENCH_WS_IDLE", "20000"))
    idle = idle_ceiling(wanted)
    sockets = int(os.environ.get("KIRANA_BENCH_WS_SOCKETS", "5000"))
    events = int(os.environ.get("KIRANA_BENCH_WS_EVENTS", "100"))
    rate = float(os.environ.get("KIRANA_BENCH_WS_RATE", "10"))
    peer = realtime_peer.binary()
    base_dir = Path(tempfile.mkdtemp(prefix="kirana-bench-ws-"))
    r = asyncio.run(measure(base_dir, idle=idle, sockets=sockets, events=events, rate=rate, centrifugo=peer))
    k, b, c = r["kirana"], r["bare"], r["centrifugo"]
    cf = realtime_peer.name()
    clients = (
        f"clients: {k['client_processes']} Python processes of `websockets` "
        f"(at most {ws_fleet.PER_PROCESS} sockets each) on the same machine"
    )
    capped = (
        f"; {wanted} asked, {idle} held: this machine allows "
        f"{resource.getrlimit(resource.RLIMIT_NOFILE)[1]} open files per process"
        if idle < wanted
        else ""
    )

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
            f"{opened}{capped}",
            f"{opened}; {realtime_peer.SETUP}{capped}",
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
