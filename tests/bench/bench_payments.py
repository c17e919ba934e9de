"""Payments benchmarks: webhook ingestion (events/s and p99 at 50 concurrent senders, against a
bare Starlette route that only checks the HMAC and inserts the event) and verify p95.

`python -m tests.bench.run payments`. Each server takes two loads of distinct signed events:
- peak events/s: wrk, closed loop, 50 connections for KIRANA_BENCH_SECONDS (default 15) over
  KIRANA_BENCH_WEBHOOK_EVENTS events (default 60000); its p99 is the queue at saturation;
- p99 at the floor's rate: Vegeta, open loop, KIRANA_BENCH_WEBHOOK_RATE events/s (default
  1000) from at most 50 connections for the same time, so a slow answer cannot slow the
  senders down and hide itself (`tests/bench/vegeta.py`).
KIRANA_BENCH_VERIFY_COUNT (default 300) verifications.
tests/integration/payments/test_payments_bench.py runs it on a tiny load with httpx (wrk is
installed by `make bench` only) to check it works, never for figures.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psycopg
from httpx import ASGITransport, AsyncClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kirana.api.app import create_app
from kirana.api.db.lifecycle import Lifecycle
from kirana.api.db.urls import libpq_url
from kirana.api.devrazorpay.server import FakeServer
from kirana.api.devrazorpay.store import sign
from kirana.api.devstack import EmbeddedPostgres, EmbeddedRedis, free_port
from kirana.api.settings import Settings
from tests.bench import vegeta
from tests.bench.harness import Result, stop, uvicorn_process, wait_http
from tests.integration.commerce.conftest import Catalog, sign_in
from tests.integration.servers import start_server

SENDERS = 50
SECRET = "bench-webhook-secret"


# -- the bare limit: HMAC check + one INSERT, nothing else --------------------------------


def bare_webhook_app() -> Starlette:
    pool: list[asyncpg.Pool] = []

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        pool.append(
            await asyncpg.create_pool(libpq_url(os.environ["KIRANA_DATABASE_URL"]), min_size=5, max_size=20)
        )
        yield
        await pool[0].close()

    async def hook(request: Request) -> JSONResponse:
        raw = await request.body()
        expected = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-razorpay-signature", "")):
            return JSONResponse({"error": "signature"}, status_code=400)
        body = json.loads(raw)
        await pool[0].execute(
            "INSERT INTO payment_webhook_events (event_id, event, body, received_at)"
            " VALUES ($1, $2, $3, now()) ON CONFLICT DO NOTHING",
            request.headers["x-razorpay-event-id"],
            body["event"],
            raw.decode(),
        )
        return JSONResponse({"status": "accepted"})

    return Starlette(
        routes=[
            Route("/v1/webhooks/razorpay", hook, methods=["POST"]),
            Route("/readyz", lambda _: JSONResponse({}), methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def _events(n: int) -> list[tuple[bytes, dict[str, str]]]:
    out = []
    for i in range(n):
        body = json.dumps(
            {
                "entity": "event",
                "event": "payment.authorized",
                "contains": ["payment"],
                "payload": {
                    "payment": {
                        "entity": {
                            "id": f"pay_b{i:012d}",
                            "amount": 10_000,
                            "currency": "INR",
                            "order_id": "order_unknown",
                            "status": "authorized",
                            "method": "upi",
                        }
                    }
                },
                "created_at": int(time.time()),
            },
            separators=(",", ":"),
        ).encode()
        out.append(
            (
                body,
                {
                    "Content-Type": "application/json",
                    "X-Razorpay-Event-Id": f"evt_{uuid.uuid4().hex[:20]}",
                    "X-Razorpay-Signature": sign(SECRET, body.decode()),
                },
            )
        )
    return out


async def _load(base: str, events: list[tuple[bytes, dict[str, str]]]) -> dict[str, float]:
    latencies: list[float] = []
    queue = list(reversed(events))

    async def sender(http: httpx.AsyncClient) -> None:
        while queue:
            body, headers = queue.pop()
            t0 = time.perf_counter()
            r = await http.post("/v1/webhooks/razorpay", content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise RuntimeError(f"webhook answered {r.status_code}: {r.text[:200]}")

    limits = httpx.Limits(max_connections=SENDERS, max_keepalive_connections=SENDERS)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(sender(http) for _ in range(SENDERS)))
        elapsed = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [latencies[0]] * 99
    return {
        "events_per_s": len(latencies) / elapsed,
        "p99_ms": q[98] * 1000,
        "p50_ms": q[49] * 1000,
        "n": len(latencies),
    }


async def _verify_p95(settings: Settings, fake: FakeServer, count: int) -> dict[str, float]:
    from tests.integration.commerce.conftest import customer

    app = create_app(settings, handle_signals=False)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://bench") as client,
    ):
        shop = Catalog(app.state.db)
        await shop.category("grocery")
        await shop.product(sku="BENCH", price=10_000, stock=count + 10)
        client.headers["Authorization"] = f"Bearer {await sign_in(app, customer())}"
        samples = []
        for _ in range(count):
            r = await client.post(
                "/v1/orders",
                json={"lines": [{"sku": "BENCH", "quantity": 1}]},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            co = (await client.post(f"/v1/orders/{r.json()['id']}/payments")).json()
            p = fake.account.pay(co["razorpay_order_id"], method="upi")
            answer = {
                "razorpay_order_id": co["razorpay_order_id"],
                "razorpay_payment_id": p["id"],
                "razorpay_signature": fake.account.checkout_signature(co["razorpay_order_id"], p["id"]),
            }
            t0 = time.perf_counter()
            v = await client.post("/v1/payments/verify", json=answer)
            samples.append(time.perf_counter() - t0)
            assert v.status_code == 200 and v.json()["order_status"] == "paid", v.text
    q = statistics.quantiles(samples, n=100) if len(samples) >= 2 else [samples[0]] * 99
    return {"p95_ms": q[94] * 1000, "p50_ms": q[49] * 1000, "n": len(samples)}


def _wrk_load(
    base: str, events: list[tuple[bytes, dict[str, str]]], tmp: Path, seconds: float
) -> dict[str, float]:
    """The same events driven by wrk (C, one thread, 50 connections) for `seconds`: the load
    generator that can outrun both servers (httpx in Python tops out first on 2 cores)."""
    from tests.bench import bench_commerce as bc

    lines = tmp / "webhooks.txt"
    with lines.open("w") as f:
        for body, headers in events:
            f.write(f"{headers['X-Razorpay-Event-Id']}\t{headers['X-Razorpay-Signature']}\t{body.decode()}\n")
    script = bc._script(tmp, "webhooks")
    bc.wrk(base, script, str(lines), seconds=3, connections=SENDERS)  # warm-up: connections, plans
    load = bc.wrk(base, script, str(lines), seconds=seconds, connections=SENDERS)
    if load.errors:
        raise RuntimeError(f"{load.errors} webhook deliveries failed under wrk")
    peak = {"events_per_s": load.rps, "p99_ms": load.p99_ms, "p50_ms": load.p50_ms, "n": load.requests}
    rate = int(os.environ.get("KIRANA_BENCH_WEBHOOK_RATE", "1000"))
    paced = vegeta.attack(
        f"{base}/v1/webhooks/razorpay",
        _events(int(rate * seconds) + rate),
        rate=rate,
        seconds=seconds,
        connections=SENDERS,
        tmp=tmp,
    )
    return {**peak, "paced": asdict(paced) | {"kept_up": paced.kept_up}}


async def measure(
    base_dir: Path, *, events: int, verifies: int, wrk_seconds: float | None = None
) -> dict[str, Any]:
    """`wrk_seconds`: drive the webhooks with wrk for that long (`make bench`); None: with
    httpx, each event once (the tiny check in the test suite, where wrk is not installed)."""
    pg = EmbeddedPostgres(base_dir / "pg", durable=False)
    redis = EmbeddedRedis(base_dir / "redis", durable=False)
    pg.start()
    redis.start()
    fake = FakeServer(webhook_secret=SECRET).start()
    procs = []
    try:
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'kirana'").fetchone():
                conn.execute("CREATE DATABASE kirana")
        Lifecycle(pg.url).migrate()
        env = {
            "KIRANA_DATABASE_URL": pg.url,
            "KIRANA_REDIS_URL": redis.url,
            "KIRANA_ENVIRONMENT": "test",
            "KIRANA_LOG_LEVEL": "WARNING",
            "KIRANA_DATA_DIR": str(base_dir / "srv"),
            "KIRANA_RAZORPAY_KEY_ID": fake.account.key_id,
            "KIRANA_RAZORPAY_KEY_SECRET": fake.account.key_secret,
            "KIRANA_RAZORPAY_WEBHOOK_SECRET": SECRET,
            "KIRANA_RAZORPAY_BASE_URL": fake.base_url,
        }
        # Both servers as the other benchmarks run them: two worker processes on the two cores
        # (one in the tiny check).
        workers = 2 if wrk_seconds is not None else 1
        proc, base = start_server(env, workers=workers, app_factory="kirana.api.asgi:factory")
        procs.append(proc)

        def drive(url: str, tag: str) -> Any:
            batch = _events(events)
            if wrk_seconds is None:
                return _load(url, batch)
            return asyncio.to_thread(_wrk_load, url, batch, base_dir / tag, wrk_seconds)

        (base_dir / "kirana").mkdir(exist_ok=True)
        (base_dir / "bare").mkdir(exist_ok=True)
        kirana = await drive(base, "kirana")
        stop(proc)
        port = free_port()
        bare = uvicorn_process(
            "tests.bench.bench_payments:bare_webhook_app", port, workers, env=env, factory=True
        )
        procs.append(bare)
        wait_http(f"http://127.0.0.1:{port}/readyz", bare)
        limit = await drive(f"http://127.0.0.1:{port}", "bare")
        settings = Settings(
            environment="test",
            database_url=pg.url,
            redis_url=redis.url,
            data_dir=base_dir,
            log_json=False,
            log_level="WARNING",
            razorpay_key_id=fake.account.key_id,
            razorpay_key_secret=fake.account.key_secret,
            razorpay_base_url=fake.base_url,
            razorpay_webhook_secret=SECRET,
        )
        verify = await _verify_p95(settings, fake, verifies)
        return {"kirana": kirana, "bare": limit, "verify": verify}
    finally:
        for p in procs:
            stop(p)
        fake.stop()
        redis.stop()
        pg.stop()


def _measure(events: int, verifies: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kirana-bench-payments-") as tmp:
        return asyncio.run(measure(Path(tmp), events=events, verifies=verifies, wrk_seconds=seconds))


def run() -> list[Result]:
    """The figures as `make bench` results (tests/bench/run.py)."""
    # Enough distinct events that neither server sees a repeat (a duplicate is cheaper).
    events = int(os.environ.get("KIRANA_BENCH_WEBHOOK_EVENTS", "60000"))
    verifies = int(os.environ.get("KIRANA_BENCH_VERIFY_COUNT", "300"))
    seconds = float(os.environ.get("KIRANA_BENCH_SECONDS", "15"))
    r = _measure(events, verifies, seconds)
    k, b, v = r["kirana"], r["bare"], r["verify"]
    kp, bp = k["paced"], b["paced"]
    rate = round(kp["requested_rate"])
    return [
        Result(
            "payments",
            f"webhook ingestion peak at {SENDERS} senders (closed loop), events/s",
            round(k["events_per_s"]),
            "events/s",
            target=">= 1000",
            meets_target=k["events_per_s"] >= 1000,
            baseline=round(b["events_per_s"]),
            baseline_name="bare Starlette HMAC + INSERT",
            notes=(
                f"wrk 50 connections, n={k['n']} distinct signed events, 2 server workers; at "
                f"saturation p50 {k['p50_ms']:.1f} ms, p99 {k['p99_ms']:.0f} ms "
                f"(bare {b['p50_ms']:.1f} / {b['p99_ms']:.0f} ms)"
            ),
            extra={"kirana": {x: y for x, y in k.items() if x != "paced"}, "bare": b},
        ),
        Result(
            "payments",
            f"webhook ingestion p99 at {rate} events/s from {SENDERS} senders (open loop)",
            round(kp["p99_ms"], 1),
            "ms",
            target="< 50 ms",
            meets_target=kp["kept_up"] and kp["p99_ms"] < 50,
            baseline=round(bp["p99_ms"], 1),
            baseline_name="bare Starlette HMAC + INSERT",
            notes=(
                f"Vegeta at {rate}/s: sent {kp['achieved_rate']:.0f}/s, {kp['success']:.0%} answered 2xx, "
                f"p50 {kp['p50_ms']:.1f} ms, p95 {kp['p95_ms']:.1f} ms, max {kp['max_ms']:.0f} ms, "
                f"n={kp['requests']}"
            ),
            extra={"kirana": kp, "bare": bp},
        ),
        Result(
            "payments",
            "payment verification (signature, fetch, capture, ledger) p95",
            round(v["p95_ms"], 1),
            "ms",
            notes=f"p50 {v['p50_ms']:.1f} ms against the local fake Razorpay, n={v['n']}",
            extra=v,
        ),
    ]
