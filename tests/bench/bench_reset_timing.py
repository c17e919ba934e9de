"""Benchmark: does a password-reset request take longer for an account that exists?

`make bench only=reset_timing` runs `run()`; `uv run python -m tests.bench.bench_reset_timing
[pairs]` prints the raw figures. Starts embedded PostgreSQL and Redis and one API in this
process, creates `pairs` accounts, then sends `POST /v1/auth/password/reset-request` alternately
for a known and an unknown address (interleaved, so machine noise hits both alike; every
address once and at most 10 requests per client address, under the abuse limits) and compares
the two latency distributions: percentiles of each, and the probability that a known request
is slower than an unknown one (the Mann-Whitney common-language effect size: 0.5 means an
observer cannot tell them apart; the issue this guards against measured 1.0, no overlap).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from httpx import ASGITransport, AsyncClient

from kirana.api.app import create_app
from kirana.api.db.lifecycle import Lifecycle
from kirana.api.devstack import EmbeddedPostgres, EmbeddedRedis
from kirana.api.settings import Settings
from tests.bench.harness import Result
from tests.integration.access.helpers import make_user


def _summary(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {"p10_ms": at(0.10), "p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99), "n": len(ordered)}


def prob_slower(a: list[float], b: list[float]) -> float:
    """P(a sample of `a` > a sample of `b`), ties counting half."""
    ordered = sorted(b)
    total = 0.0
    for x in a:
        below = bisect.bisect_left(ordered, x)
        equal = bisect.bisect_right(ordered, x) - below
        total += below + equal / 2
    return total / (len(a) * len(ordered))


async def measure(base_dir: Path, *, pairs: int = 200) -> dict[str, Any]:
    pg = EmbeddedPostgres(base_dir / "pg", durable=False)
    redis = EmbeddedRedis(base_dir / "redis", durable=False)
    pg.start()
    redis.start()
    try:
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'kirana'").fetchone():
                conn.execute("CREATE DATABASE kirana")
        Lifecycle(pg.url).migrate()
        settings = Settings(
            environment="test", database_url=pg.url, redis_url=redis.url, data_dir=base_dir, log_json=False
        )
        app = create_app(settings, handle_signals=False)
        async with app.router.lifespan_context(app):
            known_emails = [(await make_user(app)).email for _ in range(pairs)]
            known: list[float] = []
            unknown: list[float] = []
            for i in range(pairs):
                if i % 5 == 0:  # a new client address every 10 requests (20 / h / IP allowed)
                    transport = ASGITransport(app=app, client=(f"10.{i // 250 % 250}.{i % 250}.1", 40000))
                    client = AsyncClient(transport=transport, base_url="http://b")
                for kind, email in (("known", known_emails[i]), ("unknown", f"nobody-{i}@example.com")):
                    t0 = time.perf_counter()
                    r = await client.post("/v1/auth/password/reset-request", json={"identifier": email})
                    elapsed = time.perf_counter() - t0
                    if r.status_code != 202:
                        raise RuntimeError(f"reset request answered {r.status_code}: {r.text}")
                    (known if kind == "known" else unknown).append(elapsed)
            return {
                "known": _summary(known),
                "unknown": _summary(unknown),
                "p_known_slower": round(prob_slower(known, unknown), 3),
            }
    finally:
        redis.stop()
        pg.stop()


def _measure(pairs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kirana-bench-") as tmp:
        return asyncio.run(measure(Path(tmp), pairs=pairs))


def run() -> list[Result]:
    """The figures as `make bench` results (tests/bench/run.py)."""
    r = _measure(400)
    known, unknown = r["known"], r["unknown"]
    return [
        Result(
            "reset_timing",
            "P(known-account reset request slower than unknown)",
            r["p_known_slower"],
            "",
            target="0.40-0.60",
            meets_target=0.4 <= r["p_known_slower"] <= 0.6,
            notes=f"known p50 {known['p50_ms']} ms p90 {known['p90_ms']} ms; "
            f"unknown p50 {unknown['p50_ms']} ms p90 {unknown['p90_ms']} ms; n={known['n']} each",
            extra=r,
        )
    ]


if __name__ == "__main__":
    print(json.dumps(_measure(int(sys.argv[1]) if len(sys.argv) > 1 else 200), indent=2))
