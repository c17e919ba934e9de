"""Foundation benchmarks: `make run` to ready, /livez and /readyz throughput and latency with 1
and 2 uvicorn workers against bare Starlette and plain FastAPI, idle RSS per API process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kirana.api.db.lifecycle import Lifecycle
from kirana.api.devstack import EmbeddedPostgres, EmbeddedRedis, free_port
from tests.bench.harness import (
    REPO,
    Result,
    server_rss_mib,
    stop,
    uvicorn_process,
    wait_http,
    wrk,
)
from tests.localrun import start_run

SECONDS = int(os.environ.get("KIRANA_BENCH_SECONDS", "10"))
CONNECTIONS = 50


def _kirana_serve(port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kirana.api", "serve", "--port", str(port), "--workers", str(workers)],
        env=os.environ | env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _make_run_ready(tmp: Path) -> list[Result]:
    """Time from `kirana run` (what `make run` calls once installed) to /readyz answering 200."""
    out = []
    data = tmp / "run-state"
    port = free_port()
    for label in ("first start (empty data dir)", "later start (data reused)"):
        t0 = time.monotonic()
        run = start_run(data, port=port)
        try:
            run.wait_ready()
            elapsed = time.monotonic() - t0
        finally:
            run.stop()
        out.append(
            Result(
                "make run",
                f"start to ready, {label}",
                round(elapsed, 2),
                "s",
                target="< 15 s",
                meets_target=elapsed < 15,
            )
        )
    return out


def run() -> list[Result]:
    results: list[Result] = []
    tmp = Path(tempfile.mkdtemp(prefix="kirana-bench-"))
    pg = EmbeddedPostgres(tmp / "pg")
    redis = EmbeddedRedis(tmp / "redis")
    try:
        results += _make_run_ready(tmp)
        db_url = pg.start()
        redis_url = redis.start()
        Lifecycle(db_url).migrate()
        env = {
            "KIRANA_DATABASE_URL": db_url,
            "KIRANA_REDIS_URL": redis_url,
            "KIRANA_DATA_DIR": str(tmp / "data"),
            "KIRANA_DRAIN_SECONDS": "0",
        }
        for workers in (1, 2):
            port = free_port()
            base = uvicorn_process("tests.bench.baseline_apps:starlette_app", port, workers)
            try:
                wait_http(f"http://127.0.0.1:{port}/livez", base, listeners=workers)
                bare = wrk(f"http://127.0.0.1:{port}/livez", seconds=SECONDS, connections=CONNECTIONS)
            finally:
                stop(base)
            fa = uvicorn_process("tests.bench.baseline_apps:fastapi_app", port, workers)
            try:
                wait_http(f"http://127.0.0.1:{port}/livez", fa, listeners=workers)
                plain = wrk(f"http://127.0.0.1:{port}/livez", seconds=SECONDS, connections=CONNECTIONS)
            finally:
                stop(fa)
            proc = _kirana_serve(port, workers, env)
            try:
                wait_http(f"http://127.0.0.1:{port}/readyz", proc, listeners=workers)
                time.sleep(2)
                rss = server_rss_mib(proc)
                small = wrk(f"http://127.0.0.1:{port}/livez", seconds=SECONDS, connections=CONNECTIONS)
                ready = wrk(f"http://127.0.0.1:{port}/readyz", seconds=SECONDS, connections=CONNECTIONS)
            finally:
                stop(proc)
            tag = f"{workers} worker{'s' if workers > 1 else ''}"
            results.append(
                Result(
                    "http",
                    f"/livez (small JSON route) req/s, {tag}",
                    round(small.requests_per_s),
                    "req/s",
                    target=">= 3000 (2 workers)" if workers == 2 else "",
                    meets_target=small.requests_per_s >= 3000 if workers == 2 else None,
                    baseline=round(bare.requests_per_s),
                    baseline_name="bare Starlette route",
                    notes=f"plain FastAPI route: {plain.requests_per_s:.0f} req/s; "
                    f"errors {small.errors}/{small.requests}",
                    extra={
                        "p50_ms": small.p50_ms,
                        "p99_ms": small.p99_ms,
                        "bare_p50_ms": bare.p50_ms,
                        "bare_p99_ms": bare.p99_ms,
                        "fastapi_rps": plain.requests_per_s,
                    },
                )
            )
            results.append(
                Result(
                    "http",
                    f"/livez p50 / p99, {tag}",
                    small.p50_ms,
                    "ms",
                    notes=f"p99 {small.p99_ms:.2f} ms (bare Starlette p50 {bare.p50_ms:.2f}, "
                    f"p99 {bare.p99_ms:.2f})",
                    extra={"p99_ms": small.p99_ms},
                )
            )
            results.append(
                Result(
                    "http",
                    f"/readyz (PostgreSQL + Redis round trips) req/s, {tag}",
                    round(ready.requests_per_s),
                    "req/s",
                    baseline=round(bare.requests_per_s),
                    baseline_name="bare Starlette route",
                    notes=f"p50 {ready.p50_ms:.2f} ms, p99 {ready.p99_ms:.2f} ms; errors {ready.errors}",
                    extra={"p50_ms": ready.p50_ms, "p99_ms": ready.p99_ms},
                )
            )
            results.append(
                Result(
                    "http",
                    f"idle RSS per API process, {tag}",
                    max(rss),
                    "MiB",
                    target="< 120 MiB",
                    meets_target=max(rss) < 120,
                    notes=f"each process: {rss}",
                )
            )
    finally:
        redis.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return results
