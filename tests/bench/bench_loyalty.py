"""Loyalty benchmarks: awards per second from 50 concurrent producers (the worker's award path,
beside pgbench running the award's ledger INSERT with 50 clients) and the leaderboard read p99
with 100,000 customers ranked (`kirana serve`, beside bare Redis ZREVRANGE at the same
concurrency).

`make bench only=loyalty` runs `run()`; `uv run python -m tests.bench.bench_loyalty` prints the
raw figures. Sizes: KIRANA_BENCH_LOYALTY_CUSTOMERS (ranked customers, default 100000),
KIRANA_BENCH_LOYALTY_AWARD_CUSTOMERS (customers whose orders are awarded, default 2000),
KIRANA_BENCH_LOYALTY_AWARDS (delivered orders, each awarded once, default 5000),
KIRANA_BENCH_LOYALTY_READS (leaderboard requests, default 20000), KIRANA_BENCH_LOYALTY_READERS
(signed-in customers reading, default 200), KIRANA_BENCH_SECONDS (pgbench, default 15);
tests/integration/loyalty/test_loyalty_bench.py runs it on a tiny load to check it works, never
for figures.

Customers are rows made with SQL (ids `md5('loyalty-bench-' || n)`, the customer role), as are
their delivered orders (two lines each, the state the transitions leave). Awards: 50 asyncio
tasks take the orders from one queue and call `loyalty.flows.on_order_event` with the payload
the worker's consumer passes on, `"to": "paid"` for every order, then `"to": "delivered"` (the
award), on 50 connections; pgbench runs tests/bench/pgbench_loyalty_ledger.sql. Boards: one
earning per customer this week (SQL), then the real `leaderboards.rebuild`; the route is read by
signed-in ranked customers rotating over periods and their boards (shop, store, city): once from
httpx (which checks every answer ranks the caller), then from wrk for the figures
(tests/bench/lua/paired.lua, KIRANA_BENCH_SECONDS long).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from hashlib import md5
from pathlib import Path
from typing import Any

import httpx
import psycopg
from redis.asyncio import Redis
from sqlalchemy import text

from kirana.api import redis as kirana_redis
from kirana.api.access.principal import Principal
from kirana.api.app import create_app
from kirana.api.db.engine import Database
from kirana.api.db.lifecycle import Lifecycle
from kirana.api.devstack import EmbeddedPostgres, EmbeddedRedis
from kirana.api.loyalty import boards, flows, leaderboards
from kirana.api.settings import Settings
from tests.bench import bench_commerce as bc
from tests.bench.harness import Result, stop
from tests.integration.commerce.conftest import sign_in
from tests.integration.servers import start_server

HERE = Path(__file__).resolve().parent
CLIENTS = 50
PRODUCTS = 200
CITIES = ["Bengaluru", "Mumbai", "New Delhi", "Pune", "Chennai", "Hyderabad", "Kolkata", "Jaipur"]
PERIODS = ("week", "month", "all")


def customer_id(n: int) -> uuid.UUID:
    """The id of the benchmark's customer `n`, as the seeding SQL makes it."""
    return uuid.UUID(md5(f"loyalty-bench-{n}".encode()).hexdigest())


def order_id(i: int) -> uuid.UUID:
    return uuid.UUID(md5(f"loyalty-order-{i}".encode()).hexdigest())


def _pct(samples_s: list[float], elapsed_s: float) -> dict[str, float]:
    q = statistics.quantiles(samples_s, n=100) if len(samples_s) >= 2 else [samples_s[0]] * 99
    return {
        "per_s": len(samples_s) / elapsed_s,
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "p99_ms": q[98] * 1000,
        "n": len(samples_s),
    }


async def _closed_loop(items: list[Any], work: Callable[[Any], Awaitable[None]]) -> dict[str, float]:
    """`CLIENTS` tasks take the items from one queue until it is empty; latency per item."""
    queue = list(reversed(items))
    latencies: list[float] = []

    async def one() -> None:
        while queue:
            item = queue.pop()
            t0 = time.perf_counter()
            await work(item)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(CLIENTS)))
    return _pct(latencies, time.perf_counter() - t0)


# -- the shop -----------------------------------------------------------------------------


def seed(url: str, *, customers: int, award_customers: int, orders: int) -> None:
    """Catalog, customers and delivered orders (order i belongs to customer i mod award_customers)."""
    from sqlalchemy import create_engine

    from kirana.api.catalog import generate
    from kirana.api.db.urls import sync_url

    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        generate.generate(conn, PRODUCTS, seed=7)
    engine.dispose()
    cities = "ARRAY[" + ",".join(f"'{c}'" for c in CITIES) + "]"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, email, name, password_hash) SELECT md5('loyalty-bench-' || n)::uuid, "
            "'loyal-' || n || '@bench.invalid', 'Shopper ' || n, '!' FROM generate_series(0, %s) n",
            (customers - 1,),
        )
        conn.execute(
            "INSERT INTO user_roles (id, user_id, role, granted_at) SELECT gen_random_uuid(), id, "
            "'customer', now() FROM users WHERE email LIKE 'loyal-%@bench.invalid'"
        )
        conn.execute(
            "CREATE TEMP TABLE pick AS SELECT i, v.id AS variant_id, v.product_id, v.sku, p.title, "
            "v.attributes, v.price_paise AS price, v.mrp_paise AS mrp FROM generate_series(0, %s) i "
            "CROSS JOIN generate_series(0, 1) k JOIN (SELECT *, row_number() OVER (ORDER BY id) - 1 AS n "
            "FROM catalog_variants) v ON v.n = (i * 2 + k) %% (SELECT count(*) FROM catalog_variants) "
            "JOIN catalog_products p ON p.id = v.product_id",
            (orders - 1,),
        )
        conn.execute(
            "INSERT INTO orders (id, user_id, store_code, status, currency, subtotal_paise, "
            "mrp_total_paise, tax_paise, total_paise, item_count, shipping_address, paid_at, closed_at) "
            "SELECT md5('loyalty-order-' || i)::uuid, md5('loyalty-bench-' || (i %% %s))::uuid, 'main', "
            "'delivered', 'INR', sum(price), sum(mrp), sum(price * 5 / 105), sum(price), 2, "
            f"jsonb_build_object('name', 'Shopper', 'city', ({cities})[1 + (i %% %s) %% {len(CITIES)}], "
            "'pincode', '560001'), now() - interval '1 day', now() FROM pick GROUP BY i",
            (award_customers, award_customers),
        )
        conn.execute(
            "INSERT INTO order_lines (id, order_id, variant_id, product_id, sku, title, attributes, "
            "quantity, unit_price_paise, unit_mrp_paise, tax_rate_percent, tax_paise, line_total_paise) "
            "SELECT gen_random_uuid(), md5('loyalty-order-' || i)::uuid, variant_id, product_id, sku, "
            "title, attributes, 1, price, mrp, 5, price * 5 / 105, price FROM pick"
        )
        conn.execute("VACUUM ANALYZE")


def fill_history(url: str, *, customers: int) -> None:
    """One earning this week for every customer (points 1..5000, so ranks differ), their account
    balances to match: what the boards rank after `rebuild`."""
    cities = "ARRAY[" + ",".join(f"'{'-'.join(c.lower().split())}'" for c in CITIES) + "]"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO loyalty_ledger (user_id, kind, points, source, store_code, city, board_at, "
            "created_at) "
            "SELECT md5('loyalty-bench-' || n)::uuid, 'earn', 1 + (n * 7919) %% 5000, 'earn:history-' || n, "
            f"'main', ({cities})[1 + n %% {len(CITIES)}], now(), now() FROM generate_series(0, %s) n",
            (customers - 1,),
        )
        conn.execute(
            "INSERT INTO loyalty_accounts (user_id, balance) SELECT user_id, sum(points) FROM loyalty_ledger "
            "WHERE source LIKE 'earn:history-%' GROUP BY user_id "
            "ON CONFLICT (user_id) DO UPDATE SET balance = loyalty_accounts.balance + excluded.balance "
            "WHERE loyalty_accounts.debt = 0"
        )
        conn.execute("VACUUM ANALYZE")


# -- awards -------------------------------------------------------------------------------


async def awards(
    url: str, redis_url: str, settings: Settings, orders: list[tuple[uuid.UUID, uuid.UUID]]
) -> dict[str, Any]:
    """The paid events of every order, then the delivered events (the awards), as the worker's
    consumer hands them to `on_order_event`."""
    db = Database(url, pool_size=CLIENTS, max_overflow=0, application_name="kirana-worker")
    redis = kirana_redis.connect(redis_url)
    out: dict[str, Any] = {}
    try:

        async def hold() -> None:  # open the pool's connections before timing
            async with db.session() as s:
                await s.execute(text("SELECT pg_sleep(0.05)"))

        await asyncio.gather(*(hold() for _ in range(CLIENTS)))
        for before, to in (("pending_payment", "paid"), ("out_for_delivery", "delivered")):
            changed = 0

            async def event(order: tuple[uuid.UUID, uuid.UUID], before: str = before, to: str = to) -> None:
                nonlocal changed
                payload = {
                    "order_id": str(order[0]),
                    "user_id": str(order[1]),
                    "store_code": "main",
                    "from": before,
                    "to": to,
                    "actor": "system",
                    "actor_id": None,
                }
                got = await flows.on_order_event(db, redis, payload=payload, settings=settings.loyalty)
                changed += got  # after the await: `changed += await ...` would read it before

            out[to] = await _closed_loop(orders, event) | {"changed": changed}
    finally:
        await redis.aclose()
        await db.dispose()
    return out


# -- leaderboards -------------------------------------------------------------------------


async def rebuild(url: str, redis_url: str) -> dict[str, Any]:
    db = Database(url, pool_size=1, max_overflow=0)
    redis = kirana_redis.connect(redis_url)
    try:
        t0 = time.perf_counter()
        async with db.session() as session:
            made = await leaderboards.rebuild(session, redis)
        seconds = time.perf_counter() - t0
        ranked = await redis.zcard(boards.key("all", "all"))
    finally:
        await redis.aclose()
        await db.dispose()
    return made | {"seconds": seconds, "ranked": int(ranked)}


def city_scope(n: int) -> str:
    """Customer n's delivery city as a board scope (the seeding SQL gives n the same city)."""
    return "city:" + "-".join(CITIES[n % len(CITIES)].lower().split())


def scopes_of(n: int) -> list[str]:
    """The boards customer n is ranked on: shop-wide, the store's, the city's."""
    return ["all", "store:main", city_scope(n)]


async def tokens(settings: Settings, user_ids: list[uuid.UUID]) -> list[str]:
    """Real bearer tokens of live sessions of these (existing, customer-role) accounts."""
    app = create_app(settings, handle_signals=False)
    async with app.router.lifespan_context(app):
        return [await sign_in(app, Principal(user_id=uid)) for uid in user_ids]


async def http_reads(base: str, requests: list[tuple[str, str]]) -> dict[str, float]:
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:

        async def get(req: tuple[str, str]) -> None:
            r = await http.get(req[0], headers={"Authorization": f"Bearer {req[1]}"})
            if r.status_code != 200 or r.json()["me"] is None:
                raise RuntimeError(f"leaderboard answered {r.status_code}: {r.text[:200]}")

        await _closed_loop(requests[: 2 * CLIENTS], get)  # warm: connections, caches
        return await _closed_loop(requests, get)


def wrk_reads(base: str, requests: list[tuple[str, str]], tmp: Path, seconds: float) -> dict[str, float]:
    """The same signed-in reads from wrk (a C load generator: the Python client above is itself a
    limit at these rates), closed loop on CLIENTS connections for `seconds`."""
    lines = tmp / "board_reads.tsv"
    lines.write_text("".join(f"{path}\t{token}\n" for path, token in requests))
    # closed() raises when any request failed (a non-2xx answer or a socket error).
    load = bc.closed(base, bc._script(tmp, "paired"), lambda _phase, _t: [str(lines), "0"], seconds)
    return {
        "p50_ms": load.p50_ms,
        "p95_ms": load.p95_ms,
        "p99_ms": load.p99_ms,
        "per_s": load.rps,
        "n": load.requests,
    }


async def bare_reads(redis_url: str, keys: list[str]) -> dict[str, float]:
    redis = Redis.from_url(redis_url)
    try:

        async def zrevrange(k: str) -> None:
            if not await redis.zrevrange(k, 0, 9, withscores=True):
                raise RuntimeError(f"{k} is empty")

        await _closed_loop(keys[: 2 * CLIENTS], zrevrange)
        return await _closed_loop(keys, zrevrange)
    finally:
        await redis.aclose()


# -- the run ------------------------------------------------------------------------------


async def measure(
    base_dir: Path,
    *,
    customers: int,
    award_customers: int,
    orders: int,
    reads: int,
    readers: int,
    pgbench_seconds: float,
) -> dict[str, Any]:
    pg = EmbeddedPostgres(base_dir / "pg", durable=True)
    redis = EmbeddedRedis(base_dir / "redis", durable=False)
    url, redis_url = pg.start(), redis.start()
    proc = None
    try:
        Lifecycle(url).migrate()
        settings = Settings(
            environment="test",
            database_url=url,
            redis_url=redis_url,
            data_dir=base_dir / "srv",
            log_json=False,
            log_level="WARNING",
        )
        seed(url, customers=customers, award_customers=award_customers, orders=orders)
        work = [(order_id(i), customer_id(i % award_customers)) for i in range(orders)]
        result: dict[str, Any] = await awards(url, redis_url, settings, work)
        result["pgbench"] = asdict(
            bc.pgbench(
                url,
                [HERE / "pgbench_loyalty_ledger.sql"],
                seconds=pgbench_seconds,
                tmp=base_dir,
                define={"customers": str(customers)},
                mode="prepared",
            )
        )
        fill_history(url, customers=customers)
        result["boards"] = await rebuild(url, redis_url)

        ranked = [customer_id(k * customers // readers) for k in range(readers)]
        bearer = await tokens(settings, ranked)
        env = {
            "KIRANA_DATABASE_URL": url,
            "KIRANA_REDIS_URL": redis_url,
            "KIRANA_ENVIRONMENT": "test",
            "KIRANA_LOG_LEVEL": "WARNING",
            "KIRANA_DATA_DIR": str(base_dir / "srv"),
        }
        proc, base = start_server(env, workers=1, app_factory="kirana.api.asgi:factory")
        # Each request: a reader (in turn), a period, and a board the reader is ranked on.
        picks = [(i * 7) % readers for i in range(reads)]
        boards_read = [
            (PERIODS[i % 3], scopes_of(r * customers // readers)[(i // 3) % 3]) for i, r in enumerate(picks)
        ]
        requests = [
            (f"/v1/loyalty/leaderboards/{p}?scope={sc}", bearer[r])
            for r, (p, sc) in zip(picks, boards_read, strict=True)
        ]
        result["http"] = await http_reads(base, requests)  # checks the answers, warms the caches
        result["wrk"] = wrk_reads(base, requests, base_dir, pgbench_seconds)
        stop(proc)
        proc = None
        at = datetime.now(UTC)
        keys = [boards.key(boards.period_key(p, at), sc) for p, sc in boards_read]
        result["bare"] = await bare_reads(redis_url, keys)
        return result
    finally:
        if proc is not None:
            stop(proc)
        redis.stop()
        pg.stop()


def sizes() -> dict[str, Any]:
    env = os.environ.get
    return {
        "customers": int(env("KIRANA_BENCH_LOYALTY_CUSTOMERS", "100000")),
        "award_customers": int(env("KIRANA_BENCH_LOYALTY_AWARD_CUSTOMERS", "2000")),
        "orders": int(env("KIRANA_BENCH_LOYALTY_AWARDS", "5000")),
        "reads": int(env("KIRANA_BENCH_LOYALTY_READS", "20000")),
        "readers": int(env("KIRANA_BENCH_LOYALTY_READERS", "200")),
        "pgbench_seconds": float(env("KIRANA_BENCH_SECONDS", "15")),
    }


def _measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kirana-bench-loyalty-") as tmp:
        return asyncio.run(measure(Path(tmp), **sizes()))


def run() -> list[Result]:
    """The figures as `make bench` results (tests/bench/run.py). The issue sets no targets."""
    n = sizes()
    r = _measure()
    paid, award, pgb, http, bare, b, wrk = (
        r[k] for k in ("paid", "delivered", "pgbench", "http", "bare", "boards", "wrk")
    )
    return [
        Result(
            "loyalty",
            f"awards (order delivered, on_order_event) at {CLIENTS} producers, awards/s",
            round(award["per_s"]),
            "awards/s",
            baseline=round(pgb["rps"]),
            baseline_name=f"pgbench, the award's ledger INSERT, {CLIENTS} clients, tps",
            notes=f"{n['orders']:,} delivered orders of {n['award_customers']:,} customers, each awarded "
            f"once (credit, ledger row, tier, achievements, then the board scores); per award p50 "
            f"{award['p50_ms']:.1f} / p99 {award['p99_ms']:.1f} ms; pgbench {pgb['requests']:,} "
            f"inserts, p50 {pgb['p50_ms']:.1f} / p99 {pgb['p99_ms']:.1f} ms, errors {pgb['errors']}",
            extra={"awards": award, "pgbench": pgb},
        ),
        Result(
            "loyalty",
            f"paid events (pending points) at {CLIENTS} producers, events/s",
            round(paid["per_s"]),
            "events/s",
            notes=f"the same orders before their delivery; p50 {paid['p50_ms']:.1f} / "
            f"p99 {paid['p99_ms']:.1f} ms",
            extra=paid,
        ),
        Result(
            "loyalty",
            f"leaderboard read p99, {b['ranked']:,} customers ranked, {CLIENTS} clients",
            round(wrk["p99_ms"], 2),
            "ms",
            baseline=round(bare["p99_ms"], 2),
            baseline_name=f"bare ZREVRANGE 0 9 WITHSCORES, {CLIENTS} redis.asyncio tasks",
            notes=f"GET /v1/loyalty/leaderboards/{{period}} on kirana serve (1 worker), wrk {CLIENTS} "
            f"connections: top 10, the caller's rank and neighbours; {n['readers']} signed-in ranked "
            f"customers, 3 periods x their boards (shop, store, city); p50 {wrk['p50_ms']:.1f} / p95 "
            f"{wrk['p95_ms']:.1f} ms, {wrk['per_s']:,.0f} req/s, n={wrk['n']} (httpx from Python: p99 "
            f"{http['p99_ms']:.1f} ms, {http['per_s']:,.0f} req/s); bare p50 {bare['p50_ms']:.2f} / p95 "
            f"{bare['p95_ms']:.2f} ms, {bare['per_s']:,.0f}/s; boards by leaderboards.rebuild "
            f"({b['sets']} sets, {b['seconds']:.1f} s)",
            extra={"wrk": wrk, "http": http, "bare": bare, "boards": b},
        ),
    ]


def main() -> None:
    sys.stdout.write(json.dumps(_measure(), indent=2) + "\n")


if __name__ == "__main__":
    main()
