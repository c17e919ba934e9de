"""Commerce benchmark: catalog listing p95, order placement p95 and sustained orders/s with 50
concurrent clients against a real `kirana serve` process on the embedded PostgreSQL.

Run: `uv run python -m tests.bench.bench_commerce [--products 100000] [--seconds 20]`.
Prints the figures and writes them to bench/results/commerce.json (the lead's `make bench`
collects them into BENCHMARKS.md). The server takes the caller from test headers (see
tests/integration/commerce/header_auth_app.py) because token verification is not measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from kirana.api.db.lifecycle import Lifecycle
from kirana.api.devstack import EmbeddedPostgres, EmbeddedRedis
from tests.integration.servers import REPO, start_server

CUSTOMER = "cart:use,orders:place"
CATEGORIES = ["grocery", "dal-pulses", "rice-atta", "apparel", "men-kurtas", "electronics", "mobiles", None]
SORTS = ["newest", "price_asc", "price_desc", "title"]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(name: str, lat: list[float], ok: int, errors: int, seconds: float) -> dict[str, Any]:
    return {
        "name": name,
        "requests": len(lat),
        "ok": ok,
        "errors": errors,
        "throughput_per_s": round(ok / seconds, 1),
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p95_ms": round(pct(lat, 95) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
        "mean_ms": round(statistics.fmean(lat) * 1000, 2) if lat else None,
    }


async def listing_phase(base: str, clients: int, seconds: float, think: float) -> dict[str, Any]:
    lat: list[float] = []
    ok = errors = 0
    deadline = time.monotonic() + seconds

    async def client_loop(seed: int) -> None:
        nonlocal ok, errors
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            cursor: str | None = None
            while time.monotonic() < deadline:
                params: dict[str, Any] = {"sort": rng.choice(SORTS), "limit": 24}
                cat = rng.choice(CATEGORIES)
                if cat:
                    params["category"] = cat
                if rng.random() < 0.3:
                    params["in_stock"] = "true"
                if rng.random() < 0.2:
                    params["min_price_paise"], params["max_price_paise"] = 10_000, 200_000
                if cursor and rng.random() < 0.5:
                    params = {"cursor": cursor, "sort": "newest", "limit": 24}
                t0 = time.perf_counter()
                r = await c.get("/v1/catalog/products", params=params)
                lat.append(time.perf_counter() - t0)
                if r.status_code == 200:
                    ok += 1
                    if params.get("sort") == "newest" and "category" not in params:
                        cursor = r.json()["next_cursor"]
                else:
                    errors += 1
                if think:
                    await asyncio.sleep(rng.expovariate(1 / think))

    t0 = time.monotonic()
    await asyncio.gather(*(client_loop(i) for i in range(clients)))
    return summary("catalog_listing", lat, ok, errors, time.monotonic() - t0)


async def order_phase(
    base: str, clients: int, seconds: float, skus: list[str], think: float
) -> dict[str, Any]:
    lat: list[float] = []
    ok = errors = 0
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds

    async def client_loop(seed: int) -> None:
        nonlocal ok, errors
        rng = random.Random(seed)
        user = str(uuid.uuid4())
        headers = {"X-Test-User": user, "X-Test-Permissions": CUSTOMER}
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            while time.monotonic() < deadline:
                lines = [
                    {"sku": s, "quantity": rng.randint(1, 3)} for s in rng.sample(skus, rng.randint(1, 3))
                ]
                t0 = time.perf_counter()
                r = await c.post(
                    "/v1/orders",
                    json={"lines": lines},
                    headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                )
                lat.append(time.perf_counter() - t0)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 201:
                    ok += 1
                else:
                    errors += 1
                if think:
                    await asyncio.sleep(rng.expovariate(1 / think))

    t0 = time.monotonic()
    await asyncio.gather(*(client_loop(i) for i in range(clients)))
    result = summary("order_placement", lat, ok, errors, time.monotonic() - t0)
    result["statuses"] = statuses
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--products", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--workers", type=int, default=2, help="API worker processes")
    ap.add_argument("--think-ms", type=float, default=0, help="mean pause between a client's requests")
    ap.add_argument(
        "--durable",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fsync on, as `kirana run` (default); --no-durable as the test suite",
    )
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "commerce.json")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="kirana-bench-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", durable=args.durable)
        redis = EmbeddedRedis(Path(tmp) / "redis", durable=False)
        url = pg.start()
        redis_url = redis.start()
        proc = None
        try:
            Lifecycle(url).migrate()
            from sqlalchemy import create_engine

            from kirana.api.catalog import generate
            from kirana.api.db.urls import sync_url

            engine = create_engine(sync_url(url))
            t0 = time.monotonic()
            with engine.begin() as conn:
                generate.generate(conn, args.products, seed=7)
            gen_s = time.monotonic() - t0
            engine.dispose()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
                conn.execute(
                    "UPDATE catalog_variants SET stock = 1000000 WHERE sku IN "
                    "(SELECT v.sku FROM catalog_variants v JOIN catalog_products p ON p.id = v.product_id "
                    "WHERE p.is_published AND v.is_active LIMIT 2000)"
                )
                skus = [r[0] for r in conn.execute("SELECT sku FROM catalog_variants WHERE stock = 1000000")]
            env = {
                "KIRANA_DATABASE_URL": url,
                "KIRANA_REDIS_URL": redis_url,
                "KIRANA_ENVIRONMENT": "test",
                "KIRANA_DATA_DIR": tmp,
                "KIRANA_LOG_LEVEL": "WARNING",
                "KIRANA_DB_POOL_SIZE": "20",
                "KIRANA_DB_MAX_OVERFLOW": "10",
                "KIRANA_DRAIN_SECONDS": "0",
            }
            proc, base = start_server(
                env, workers=args.workers, app_factory="tests.integration.commerce.header_auth_app:factory"
            )
            think = args.think_ms / 1000
            asyncio.run(listing_phase(base, args.clients, 3, think))  # warm-up
            listing = asyncio.run(listing_phase(base, args.clients, args.seconds, think))
            orders = asyncio.run(order_phase(base, args.clients, args.seconds, skus, think))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)
            redis.stop()
            pg.stop()
    result = {
        "benchmark": "commerce",
        "products": args.products,
        "generate_seconds": round(gen_s, 1),
        "clients": args.clients,
        "seconds_per_phase": args.seconds,
        "api_workers": args.workers,
        "think_ms": args.think_ms,
        "durable": args.durable,
        "catalog_listing": listing,
        "order_placement": orders,
        "sustained_orders_per_s": orders["throughput_per_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
