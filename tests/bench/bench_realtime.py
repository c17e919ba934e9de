"""Real-time benchmark (`make bench only=realtime`): connections (idle sockets held per API
process, their memory and how fast they opened), then fan-out (every event reaches every
subscribed socket) with commit-to-client latency p50/p95/p99 and delivered messages/s, each
beside a bare Starlette WebSocket broadcast fed by Redis pub/sub, driven by the same
`websockets` clients. Centrifugo is not driven (see the notes in the results).

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
from collections.abc import AsyncIterator
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
from tests.bench.harness import REPO, Result, stop, wait_http
from tests.integration.realtime.helpers import make_accounts

BARE_CHANNEL = "bench:bare"
PER_ACCOUNT = 1000  # KIRANA_WS_MAX_PER_USER's ceiling


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
    sockets: list[ClientConnection], events: int, publish: Any, rate_per_s: float
) -> dict[str, float]:
    latencies: list[float] = []
    done: list[float] = []
    readers = [asyncio.create_task(_receive(ws, events, latencies, done)) for ws in sockets]
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
    url: str,
    proc: subprocess.Popen[bytes],
    *,
    idle: int,
    sockets: int,
    events: int,
    rate: float,
    subprotocols: list[list[str]],
    channels: list[str | None],
    publish: Any,
) -> dict[str, float]:
    before = _rss_kib(proc)
    t0 = time.monotonic()
    held = await _open(url, idle, subprotocols, [None])
    connect_s = time.monotonic() - t0
    await asyncio.sleep(1)
    per_socket = (_rss_kib(proc) - before) / max(idle, 1)
    for ws in held:
        await ws.close()
    await asyncio.sleep(1)  # the server unregisters them (the per-user cap counts open sockets)
    live = await _open(url, sockets, subprotocols, channels)
    try:
        figures = await _fan_out(live, events, publish, rate)
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
    base_dir: Path, *, idle: int, sockets: int, events: int, rate: float = 20
) -> dict[str, Any]:
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

        sizes = {"idle": idle, "sockets": sockets, "events": events, "rate": rate}
        kirana = await _side(
            base.replace("http", "ws") + "/v1/ws",
            api,
            subprotocols=[["kirana.v1", f"bearer.{acc.token}"] for acc in accounts],
            channels=[acc.channel for acc in accounts],
            publish=commit_timed,
            **sizes,
        )
        await _listening(bare_port, bare)
        bare_figures = await _side(
            f"ws://127.0.0.1:{bare_port}/v1/ws",
            bare,
            subprotocols=[],
            channels=[None],
            publish=bare_publish,
            **sizes,
        )
        await redis.aclose()
        await db.dispose()
        return {"kirana": kirana, "bare": bare_figures}
    finally:
        for proc in procs:
            stop(proc)
        redis_server.stop()
        pg.stop()


def run() -> list[Result]:
    """The figures as `make bench` results (tests/bench/run.py)."""
    idle = int(os.environ.get("KIRANA_BENCH_WS_IDLE", "20000"))
    sockets = int(os.environ.get("KIRANA_BENCH_WS_SOCKETS", "5000"))
    events = int(os.environ.get("KIRANA_BENCH_WS_EVENTS", "100"))
    rate = float(os.environ.get("KIRANA_BENCH_WS_RATE", "10"))
    r = asyncio.run(
        measure(
            Path(tempfile.mkdtemp(prefix="kirana-bench-ws-")),
            idle=idle,
            sockets=sockets,
            events=events,
            rate=rate,
        )
    )
    k, b = r["kirana"], r["bare"]
    centrifugo = "Centrifugo not driven (not built)"
    clients = "clients: one Python process of `websockets` on the same machine"
    latency = (
        f"p50 {k['p50_ms']:.1f} / p95 {k['p95_ms']:.1f} / p99 {k['p99_ms']:.1f} ms "
        f"(bare {b['p50_ms']:.1f} / {b['p95_ms']:.1f} / {b['p99_ms']:.1f}); "
        f"{events} events at {rate}/s to {sockets} sockets, n={k['n']}"
    )
    return [
        Result(
            "realtime",
            f"idle sockets on one API process ({idle})",
            round(k["kib_per_idle_socket"], 1),
            "KiB/socket",
            target="< 50 KiB at >= 20,000",
            meets_target=idle >= 20_000 and k["kib_per_idle_socket"] < 50,
            baseline=round(b["kib_per_idle_socket"], 1),
            baseline_name="bare Starlette WebSocket",
            notes=f"opened at {k['connects_per_s']:.0f}/s (bare {b['connects_per_s']:.0f}/s); {centrifugo}",
            extra={"kirana": k, "bare": b},
        ),
        Result(
            "realtime",
            f"commit to client p99, fan-out to {sockets} sockets",
            round(k["p99_ms"], 1),
            "ms",
            target="< 100 ms",
            meets_target=k["p99_ms"] < 100,
            baseline=round(b["p99_ms"], 1),
            baseline_name="bare Redis PUBLISH to Starlette broadcast",
            notes=f"{latency}; {clients}; {centrifugo}",
        ),
        Result(
            "realtime",
            f"messages delivered/s, fan-out to {sockets} sockets",
            round(k["messages_per_s"]),
            "msg/s",
            target=">= 20000",
            meets_target=k["messages_per_s"] >= 20_000,
            baseline=round(b["messages_per_s"]),
            baseline_name="bare Redis PUBLISH to Starlette broadcast",
            notes=f"{clients}; {centrifugo}",
        ),
    ]
