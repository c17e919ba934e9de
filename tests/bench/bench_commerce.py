"""Commerce benchmark: catalog listing and order placement with 50 concurrent clients against a
real `kirana serve --workers 2` process on the embedded PostgreSQL, next to the bare limits.

`make bench only=commerce` runs `run()`; `uv run python -m tests.bench.bench_commerce
[--products 100000] [--seconds 15]` runs it alone and prints the figures.

What it does, in order:
- seeds `--products` products with the bulk generator (COPY) into a durable (fsync on) cluster,
  gives 2,000 SKUs ample stock for the order phases and creates customer accounts;
- starts `kirana serve --workers 2` with default settings and signs the customers in through
  `/v1/auth/login`: orders carry their real bearer tokens (signature check + permission cache);
- drives load with wrk (C, one thread, Lua scripts in tests/bench/lua/), so the load generator
  takes little of the two cores: listing pages drawn from a shopper-like mix of sorts,
  categories, filters and second pages; orders of 1-3 stocked SKUs, each with a fresh
  Idempotency-Key;
- closed loop (no think time, the hardest case) and paced (exponential think time offering
  about half the closed-loop rate, closer to real shoppers), listing anonymously (cached pages
  answered before routing), signed in (routed, token checked, then the cache) and without the
  response cache (`KIRANA_CATALOG_LISTING_CACHE_S=0`);
- bare limits in the same run: a bare Starlette route under the same wrk, and pgbench with 50
  clients running the very listing SQL Kirana issues (captured from the service) and the order
  transaction of one order (tests/bench/pgbench_order.sql);
- orders are placed with group commit (the default) and again with `KIRANA_ORDER_BATCH_MAX=0`,
  one transaction per order, as the bare limits place them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psutil
import psycopg

from kirana.api.db.lifecycle import Lifecycle
from kirana.api.devstack import EmbeddedPostgres, EmbeddedRedis, free_port, pg_bin_dir
from tests.bench.harness import REPO, Result, stop, uvicorn_process, wait_http
from tests.integration.servers import signed_in_customers

HERE = Path(__file__).resolve().parent
CLIENTS = 50
CUSTOMERS = 50
HOT_SKUS = 2000
CATEGORIES = ["grocery", "dal-pulses", "rice-atta", "apparel", "men-kurtas", "electronics", "mobiles", None]
SORTS = ["newest", "price_asc", "price_desc", "title"]
LISTING_TARGET_MS = 15.0
ORDER_TARGET_MS = 60.0


# -- load with wrk ------------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int

    def brief(self) -> str:
        return (
            f"p50 {self.p50_ms:.1f} / p95 {self.p95_ms:.1f} / p99 {self.p99_ms:.1f} ms, "
            f"{self.rps:,.0f} req/s, errors {self.errors}/{self.requests}"
        )


def _script(tmp: Path, name: str) -> Path:
    """A wrk script: the shared reporting code followed by the request generator."""
    path = tmp / f"{name}.lua"
    body = (HERE / "lua" / "report.lua").read_text() + "\n" + (HERE / "lua" / f"{name}.lua").read_text()
    path.write_text(body)
    return path


def wrk(url: str, script: Path, *args: str, seconds: float, connections: int = CLIENTS) -> Load:
    exe = shutil.which("wrk")
    if not exe:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    cmd = [exe, "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", str(script), url]
    if args:
        cmd += ["--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"^WRKJSON (.*)$", out, re.M)
    if not m:
        raise RuntimeError(f"wrk printed no figures:\n{out}")
    d = json.loads(m.group(1))
    secs = d["duration_us"] / 1e6
    errors = d["status_errors"] + d["connect"] + d["read"] + d["write"] + d["timeout"]
    return Load(
        requests=d["requests"],
        seconds=secs,
        rps=d["requests"] / secs,
        p50_ms=d["p50_us"] / 1000,
        p90_ms=d["p90_us"] / 1000,
        p95_ms=d["p95_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        max_ms=d["max_us"] / 1000,
        errors=errors,
    )


def closed(base: str, script: Path, args: Callable[[str, float], list[str]], seconds: float) -> Load:
    """A 3 s warm-up (connections, statement and page caches), then the closed-loop run."""
    wrk(base, script, *args("warm", 0), seconds=3)
    return _clean(wrk(base, script, *args("closed", 0), seconds=seconds), base)


def closed_then_paced(
    base: str, script: Path, args: Callable[[str, float], list[str]], seconds: float
) -> tuple[Load, Load, float]:
    """`closed`, then a paced run whose think time offers about half the closed-loop rate.
    `args(phase, think_ms)` gives the wrk script its arguments for each phase."""
    closed_loop = closed(base, script, args, seconds)
    return closed_loop, *paced(base, script, args, seconds, closed_loop)


def paced(
    base: str, script: Path, args: Callable[[str, float], list[str]], seconds: float, closed_loop: Load
) -> tuple[Load, float]:
    think = 1000 * CLIENTS / max(closed_loop.rps / 2, 1)
    return _clean(wrk(base, script, *args("paced", think), seconds=seconds), base), think


def _clean(load: Load, base: str) -> Load:
    """A run with failed requests measures nothing worth reporting: stop the benchmark."""
    if load.errors:
        raise RuntimeError(f"{base}: {load.errors} of {load.requests} requests failed")
    return load


def order_batches(base: str) -> tuple[float, float]:
    """(orders, transactions) placed by the batcher so far, summed over the server's workers."""
    text = httpx.get(base + "/metrics", timeout=10).text
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("kirana_order_batch_orders_sum", "kirana_order_batch_orders_count"):
            found[name] = float(value)
    return found.get("kirana_order_batch_orders_sum", 0.0), found.get("kirana_order_batch_orders_count", 0.0)


def batch_note(before: tuple[float, float], after: tuple[float, float]) -> str:
    orders, transactions = after[0] - before[0], after[1] - before[1]
    mean = orders / max(transactions, 1)
    return f"{mean:.1f} orders per transaction on average ({transactions:.0f} transactions)"


# -- pgbench: the database's bare limit ---------------------------------------------------


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        value = value.isoformat()
    if isinstance(value, list | tuple):
        return "ARRAY[" + ",".join(_literal(v) for v in value) + "]"
    return "'" + str(value).replace("'", "''") + "'"


def listing_sql(url: str, queries: list[dict[str, Any]]) -> list[str]:
    """The SQL Kirana's listing sends for each query, parameters inlined (one pgbench script each)."""
    from sqlalchemy import event

    from kirana.api.catalog import listing
    from kirana.api.catalog import schemas as s
    from kirana.api.db.engine import Database

    async def capture() -> list[str]:
        db = Database(url, pool_size=1, max_overflow=0)
        sent: list[tuple[str, Any]] = []

        def on_execute(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
            sent.append((statement, params))

        event.listen(db.engine.sync_engine, "before_cursor_execute", on_execute)
        scripts = []
        try:
            for q in queries:
                sent.clear()
                async with db.autocommit() as conn:
                    await listing.read_listing(conn, query=s.ProductQuery(**q))
                lines = []
                for statement, params in sent:
                    values = list(params or ())

                    def inline(m: re.Match[str], values: list[Any] = values) -> str:
                        return _literal(values[int(m.group(1)) - 1])

                    lines.append(" ".join(re.sub(r"\$(\d+)", inline, statement).split()) + ";")
                scripts.append("\n".join(lines) + "\n")
        finally:
            await db.dispose()
        return scripts

    return asyncio.run(capture())


def pgbench(
    url: str, scripts: list[Path], *, seconds: float, tmp: Path, define: dict[str, str], mode: str
) -> Load:
    exe = pg_bin_dir() / "pgbench"
    log_dir = tmp / f"pgbench-{uuid.uuid4().hex[:6]}"
    log_dir.mkdir()
    cmd = [str(exe), "-n", "-M", mode, "-c", str(CLIENTS), "-j", "2", "-T", str(int(seconds))]
    cmd += ["--log", f"--log-prefix={log_dir}/tx"]
    for k, v in define.items():
        cmd += ["-D", f"{k}={v}"]
    for sc in scripts:
        cmd += ["-f", f"{sc}@1"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{out.stdout}\n{out.stderr}")
    latencies = sorted(
        int(line.split()[2]) for f in log_dir.iterdir() for line in f.read_text().splitlines() if line
    )
    tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)

    def at(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] / 1000

    return Load(
        requests=len(latencies),
        seconds=seconds,
        rps=tps,
        p50_ms=at(0.50),
        p90_ms=at(0.90),
        p95_ms=at(0.95),
        p99_ms=at(0.99),
        max_ms=latencies[-1] / 1000,
        errors=int(failed.group(1)) if failed else 0,
    )


# -- the shop -----------------------------------------------------------------------------


def listing_queries(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """A shopper-like mix: a sort, often a category, sometimes in-stock only or a price band."""
    out = []
    for _ in range(n):
        q: dict[str, Any] = {"sort": rng.choice(SORTS), "limit": 24}
        category = rng.choice(CATEGORIES)
        if category:
            q["category"] = category
        if rng.random() < 0.3:
            q["in_stock"] = True
        if rng.random() < 0.2:
            q["min_price_paise"], q["max_price_paise"] = 10_000, 200_000
        out.append(q)
    return out


def _path(q: dict[str, Any]) -> str:
    params = {k: ("true" if v is True else v) for k, v in q.items()}
    return "/v1/catalog/products?" + urlencode(params)


def kirana_serve(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kirana.api", "serve", "--port", str(port), "--workers", "2"],
        env=os.environ | env | {"PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0


def run(products: int = 100_000, seconds: float | None = None) -> list[Result]:
    seconds = seconds or float(os.environ.get("KIRANA_BENCH_SECONDS", "15"))
    results: list[Result] = []
    tmp = Path(tempfile.mkdtemp(prefix="kirana-bench-commerce-"))
    pg = EmbeddedPostgres(tmp / "pg", durable=True)
    redis = EmbeddedRedis(tmp / "redis", durable=False)
    procs: list[subprocess.Popen[bytes]] = []
    load_before = os.getloadavg()[0]
    try:
        url = pg.start()
        redis_url = redis.start()
        Lifecycle(url).migrate()
        from sqlalchemy import create_engine

        from kirana.api.catalog import generate
        from kirana.api.db.urls import sync_url

        engine = create_engine(sync_url(url))
        t0 = time.monotonic()
        with engine.begin() as conn:
            generate.generate(conn, products, seed=7)
        gen_s = time.monotonic() - t0
        engine.dispose()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE catalog_variants SET stock = 10000000 WHERE sku IN (SELECT v.sku FROM "
                "catalog_variants v JOIN catalog_products p ON p.id = v.product_id "
                f"WHERE p.is_published AND v.is_active ORDER BY v.sku LIMIT {HOT_SKUS})"
            )
            conn.execute(
                "CREATE TABLE pgbench_hot AS SELECT row_number() OVER (ORDER BY sku) AS n, sku "
                "FROM catalog_variants WHERE stock = 10000000"
            )
            conn.execute("CREATE UNIQUE INDEX ON pgbench_hot (n)")
            # The account pgbench_order.sql orders for (orders reference users).
            conn.execute(
                "INSERT INTO users (id, email, password_hash) VALUES "
                "('00000000-0000-4000-8000-000000000001', 'pgbench@example.com', '!') ON CONFLICT DO NOTHING"
            )
            conn.execute("VACUUM ANALYZE")
            skus = [r[0] for r in conn.execute("SELECT sku FROM pgbench_hot ORDER BY n")]
        (tmp / "skus.txt").write_text("\n".join(skus) + "\n")
        results.append(
            Result(
                "commerce",
                f"bulk generator: {products:,} products",
                round(gen_s, 1),
                "s",
                notes=f"{_count(url, 'SELECT count(*) FROM catalog_variants'):,} variants, COPY",
            )
        )

        base_env = {
            "KIRANA_DATABASE_URL": url,
            "KIRANA_REDIS_URL": redis_url,
            "KIRANA_DATA_DIR": str(tmp / "data"),
            "KIRANA_DRAIN_SECONDS": "0",
        }
        port, metrics_port = free_port(), free_port()
        metrics_base = f"http://127.0.0.1:{metrics_port}"  # /metrics is apart from the API's port
        server = kirana_serve(port, base_env | {"KIRANA_METRICS_PORT": str(metrics_port)})
        procs.append(server)
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/readyz", server, timeout=120, listeners=2)
        tokens = signed_in_customers(url, base, CUSTOMERS)
        (tmp / "tokens.txt").write_text("\n".join(tokens) + "\n")

        # The listing mix: first pages, plus second pages through real cursors.
        rng = random.Random(7)
        queries = listing_queries(rng, 300)
        with httpx.Client(base_url=base, timeout=30) as client:
            for q in queries[:100]:
                r = client.get(_path(q))
                r.raise_for_status()
                if cursor := r.json()["next_cursor"]:
                    queries.append(q | {"cursor": cursor})
        (tmp / "paths.txt").write_text("\n".join(_path(q) for q in queries) + "\n")
        listing_lua, orders_lua, bare_lua = (_script(tmp, n) for n in ("listing", "orders", "bare"))
        paths = str(tmp / "paths.txt")

        def listing_args(_phase: str, think: float) -> list[str]:
            return [paths, str(think)]

        def signed_in_listing_args(_phase: str, think: float) -> list[str]:
            return [paths, str(think), str(tmp / "tokens.txt")]

        run_id = uuid.uuid4().hex[:8]

        def order_args(phase: str, think: float) -> list[str]:
            return [str(tmp / "tokens.txt"), str(tmp / "skus.txt"), f"{phase}-{run_id}", str(think)]

        listing, listing_paced, think_listing = closed_then_paced(base, listing_lua, listing_args, seconds)
        signed_in = closed(base, listing_lua, signed_in_listing_args, seconds)
        wrk(base, orders_lua, *order_args("warm", 0), seconds=3)
        batched_before = order_batches(metrics_base)
        orders = _clean(wrk(base, orders_lua, *order_args("closed", 0), seconds=seconds), base)
        batched_closed = order_batches(metrics_base)
        orders_paced, think_orders = paced(base, orders_lua, order_args, seconds, orders)
        batched_paced = order_batches(metrics_base)
        placed = _count(
            url,
            "SELECT count(*) FROM idempotency_keys WHERE response_status = 201 "
            f"AND key LIKE 'closed-{run_id}-%'",
        )
        rss = [
            round(p.memory_info().rss / 2**20) for p in psutil.Process(server.pid).children(recursive=True)
        ]
        stop(server)

        # The listing without the response cache (every request reaches PostgreSQL), and orders
        # without group commit (one transaction per order).
        server = kirana_serve(
            port, base_env | {"KIRANA_CATALOG_LISTING_CACHE_S": "0", "KIRANA_ORDER_BATCH_MAX": "0"}
        )
        procs.append(server)
        wait_http(base + "/readyz", server, timeout=120, listeners=2)
        uncached = closed(base, listing_lua, listing_args, seconds)
        alone = closed(base, orders_lua, lambda phase, think: order_args(f"alone-{phase}", think), seconds)
        stop(server)

        # Bare limits, same machine, same tool, same 50 clients.
        bare_port = free_port()
        bare = uvicorn_process("tests.bench.baseline_apps:starlette_app", bare_port, 2)
        procs.append(bare)
        wait_http(f"http://127.0.0.1:{bare_port}/livez", bare, listeners=2)
        starlette = wrk(f"http://127.0.0.1:{bare_port}/livez", bare_lua, seconds=seconds)
        stop(bare)
        # Kirana's order statements through asyncpg behind a bare Starlette route, nothing else.
        bare = uvicorn_process(
            "tests.bench.baseline_apps:order_app", bare_port, 2, env={"KIRANA_DATABASE_URL": url}
        )
        procs.append(bare)
        wait_http(f"http://127.0.0.1:{bare_port}/livez", bare, listeners=2)
        bare_orders = closed(
            f"http://127.0.0.1:{bare_port}",
            orders_lua,
            lambda phase, think: order_args(f"bare-{phase}", think),
            seconds,
        )
        stop(bare)
        sql_dir = tmp / "sql"
        sql_dir.mkdir()
        listing_scripts = []
        for i, sql in enumerate(listing_sql(url, queries[:60])):
            path = sql_dir / f"listing-{i}.sql"
            path.write_text(sql)
            listing_scripts.append(path)
        pg_listing = pgbench(url, listing_scripts, seconds=seconds, tmp=tmp, define={}, mode="prepared")
        pg_orders = pgbench(
            url,
            [HERE / "pgbench_order.sql"],
            seconds=seconds,
            tmp=tmp,
            define={"hot": str(HOT_SKUS)},
            mode="prepared",
        )
    finally:
        for p in procs:
            stop(p)
        redis.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    load_note = (
        f"load average {load_before:.1f} before the run, {os.getloadavg()[0]:.1f} after (shared machine)"
    )
    mix = f"{len(queries)} listing URLs (sorts x categories x filters, 1/4 second pages)"
    results += [
        Result(
            "commerce",
            "catalog listing p95, 50 clients closed loop (response cache on)",
            round(listing.p95_ms, 2),
            "ms",
            target=f"< {LISTING_TARGET_MS:.0f} ms",
            meets_target=listing.p95_ms < LISTING_TARGET_MS,
            notes=listing.brief() + f"; {mix}",
            extra=listing.__dict__,
        ),
        Result(
            "commerce",
            "catalog listing p95, 50 signed-in clients closed loop (bearer token checked by the route)",
            round(signed_in.p95_ms, 2),
            "ms",
            target=f"< {LISTING_TARGET_MS:.0f} ms",
            meets_target=signed_in.p95_ms < LISTING_TARGET_MS,
            notes=signed_in.brief() + "; the same URLs with real customers' access tokens: each "
            "request is routed, its token and session checked, then answered from the cache",
            extra=signed_in.__dict__,
        ),
        Result(
            "commerce",
            "catalog listing p95, 50 clients closed loop, cache off (every request queries PostgreSQL)",
            round(uncached.p95_ms, 2),
            "ms",
            target=f"< {LISTING_TARGET_MS:.0f} ms",
            meets_target=uncached.p95_ms < LISTING_TARGET_MS,
            baseline=round(pg_listing.p95_ms, 2),
            baseline_name="pgbench, same SQL, 50 clients",
            notes=uncached.brief() + f"; pgbench {pg_listing.brief()}",
            extra=uncached.__dict__ | {"pgbench": pg_listing.__dict__},
        ),
        Result(
            "commerce",
            "catalog listing req/s, cache on",
            round(listing.rps),
            "req/s",
            baseline=round(starlette.rps),
            baseline_name="bare Starlette route, same wrk",
            notes=f"bare Starlette {starlette.brief()}",
            extra={"bare_starlette": starlette.__dict__},
        ),
        Result(
            "commerce",
            "catalog listing req/s, cache off",
            round(uncached.rps),
            "req/s",
            baseline=round(pg_listing.rps),
            baseline_name="pgbench, same SQL, 50 clients",
        ),
        Result(
            "commerce",
            "catalog listing p95, paced at about half the closed-loop rate (cache on)",
            round(listing_paced.p95_ms, 2),
            "ms",
            target=f"< {LISTING_TARGET_MS:.0f} ms",
            meets_target=listing_paced.p95_ms < LISTING_TARGET_MS,
            notes=listing_paced.brief() + f"; mean think time {think_listing:.0f} ms per client",
            extra=listing_paced.__dict__,
        ),
        Result(
            "commerce",
            "order placement p95, 50 clients closed loop",
            round(orders.p95_ms, 2),
            "ms",
            target=f"< {ORDER_TARGET_MS:.0f} ms",
            meets_target=orders.p95_ms < ORDER_TARGET_MS,
            baseline=round(pg_orders.p95_ms, 2),
            baseline_name="pgbench, one order per transaction, same statements, 50 clients",
            notes=orders.brief() + f"; {batch_note(batched_before, batched_closed)}; pgbench "
            f"{pg_orders.brief()}; real bearer tokens of {CUSTOMERS} customers, fresh "
            "Idempotency-Key each, fsync on",
            extra=orders.__dict__ | {"pgbench": pg_orders.__dict__},
        ),
        Result(
            "commerce",
            "order placement p95, 50 clients closed loop, one transaction per order "
            "(KIRANA_ORDER_BATCH_MAX=0)",
            round(alone.p95_ms, 2),
            "ms",
            baseline=round(pg_orders.p95_ms, 2),
            baseline_name="pgbench, one order per transaction, same statements, 50 clients",
            notes=alone.brief() + "; what group commit saves: the same load, each order in its "
            "own transaction",
            extra=alone.__dict__,
        ),
        Result(
            "commerce",
            "order placement p95, 50 clients closed loop, against the bare HTTP limit",
            round(orders.p95_ms, 2),
            "ms",
            target=f"< {ORDER_TARGET_MS:.0f} ms",
            meets_target=orders.p95_ms < ORDER_TARGET_MS,
            baseline=round(bare_orders.p95_ms, 2),
            baseline_name="bare Starlette route, one order per transaction, same statements via asyncpg",
            notes=f"bare limit {bare_orders.brief()} (no authentication, validation, ORM, "
            "framework or batching; the same claim, lock, write and answer statements, one "
            "transaction per order)",
            extra={"bare_orders": bare_orders.__dict__},
        ),
        Result(
            "commerce",
            "sustained orders/s, 50 clients closed loop",
            round((orders.requests - orders.errors) / orders.seconds, 1),
            "orders/s",
            baseline=round(pg_orders.rps),
            baseline_name="pgbench, one order per transaction, same statements, 50 clients",
            notes=f"{orders.requests - orders.errors} orders answered 201 in {orders.seconds:.0f} s; "
            f"{placed} committed with their stored answer (with those in flight when wrk stopped)",
        ),
        Result(
            "commerce",
            "order placement p95, paced at about half the closed-loop rate",
            round(orders_paced.p95_ms, 2),
            "ms",
            target=f"< {ORDER_TARGET_MS:.0f} ms",
            meets_target=orders_paced.p95_ms < ORDER_TARGET_MS,
            notes=orders_paced.brief()
            + f"; mean think time {think_orders:.0f} ms per client; "
            + batch_note(batched_closed, batched_paced),
            extra=orders_paced.__dict__,
        ),
        Result(
            "commerce",
            "API RSS per process after the runs",
            max(rss) if rss else 0,
            "MiB",
            notes=f"each process: {rss}; {load_note}",
        ),
    ]
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=15)
    args = ap.parse_args(argv)
    for r in run(products=args.products, seconds=args.seconds):
        sys.stdout.write(json.dumps(r.as_dict()) + "\n")


if __name__ == "__main__":
    main()
