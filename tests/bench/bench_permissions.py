"""Benchmark: how fast is a permission check, and how fast does a revoke reach another process?

`make bench only=permissions` runs `run()` (figures to bench/results/permissions.json and
BENCHMARKS.md); `uv run python -m tests.bench.bench_permissions` prints the raw figures.
Starts embedded PostgreSQL and Redis, one API in this process and one in a separate server
process (uvicorn, as deployed), then measures:

- `Principal.can` on a resolved principal;
- the cached authorization path per request: snapshot lookup + Principal + check;
- the whole bearer-token path (EdDSA signature check + cached snapshot + check);
- revoke propagation: a role revoked through this process until the other *process* answers 403.

"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
from httpx import ASGITransport, AsyncClient

from kirana.api.access.runtime import principal_from
from kirana.api.app import create_app
from kirana.api.db.lifecycle import Lifecycle
from kirana.api.devstack import EmbeddedPostgres, EmbeddedRedis
from kirana.api.settings import Settings
from tests.bench.harness import Result
from tests.integration.access.helpers import login, make_user, signed_in
from tests.integration.servers import start_server


def _pct(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0

    return {"p50_us": at(0.50), "p99_us": at(0.99), "max_us": ordered[-1] / 1000.0, "n": len(ordered)}


async def _time_async(fn: Callable[[], Awaitable[Any]], n: int) -> list[int]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await fn()
        out.append(time.perf_counter_ns() - t0)
    return out


async def measure(base_dir: Path, *, iterations: int = 20_000, revokes: int = 20) -> dict[str, Any]:
    pg = EmbeddedPostgres(base_dir / "pg", durable=False)
    redis = EmbeddedRedis(base_dir / "redis", durable=False)
    pg.start()
    redis.start()
    proc = None
    try:
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'kirana'").fetchone():
                conn.execute("CREATE DATABASE kirana")
        Lifecycle(pg.url).migrate()
        settings = Settings(
            environment="test", database_url=pg.url, redis_url=redis.url, data_dir=base_dir, log_json=False
        )
        app = create_app(settings, handle_signals=False)
        async with (
            app.router.lifespan_context(app),
            AsyncClient(transport=ASGITransport(app=app), base_url="http://a") as client,
        ):
            rt = app.state.access
            owner = await signed_in(app, client, roles=("customer", "owner"), totp=True)
            staff = await login(client, await make_user(app, roles=("customer", "support")))

            # 1. The check itself on a resolved principal.
            principal = await rt.authenticate(staff.access_token)
            can = principal.can
            samples = []
            for i in range(iterations):
                perm = "orders:read_all" if i % 2 else "orders:refund"
                t0 = time.perf_counter_ns()
                can(perm)
                samples.append(time.perf_counter_ns() - t0)
            results: dict[str, Any] = {"principal_can": _pct(samples)}

            # 2. Per request after the token is verified: cached snapshot -> Principal -> check.
            sid = principal.session_id

            async def cached() -> None:
                snap = await rt.cache.get(staff.user_id)
                assert snap is not None
                principal_from(snap, sid).can("orders:read_all")

            results["cached_authorization"] = _pct(await _time_async(cached, iterations))

            # 3. The whole bearer path as `get_principal` runs it: a token seen before (its
            # verification remembered), and a token seen for the first time (Ed25519 check).
            async def bearer() -> None:
                (await rt.authenticate(staff.access_token)).can("orders:read_all")

            results["bearer_token_to_decision"] = _pct(await _time_async(bearer, iterations // 4))

            async def first_sight() -> None:
                rt.keys._verified.clear()
                (await rt.authenticate(staff.access_token)).can("orders:read_all")

            results["bearer_first_sight"] = _pct(await _time_async(first_sight, iterations // 4))
            results["cache"] = {"hits": rt.cache.hits, "loads": rt.cache.loads}

            # 4. Revoke on this process -> the other process answers 403.
            env = {
                "KIRANA_DATABASE_URL": pg.url,
                "KIRANA_REDIS_URL": redis.url,
                "KIRANA_ENVIRONMENT": "test",
                "KIRANA_LOG_LEVEL": "WARNING",
                "KIRANA_DATA_DIR": str(base_dir / "b"),
            }
            proc, base = start_server(env, app_factory="kirana.api.asgi:factory")
            delays = []
            async with httpx.AsyncClient(base_url=base, timeout=5) as other:
                roles_url = f"/v1/access/users/{staff.user_id}/roles"
                for _ in range(revokes):
                    r = await client.post(roles_url, headers=owner.headers, json={"role": "support"})
                    assert r.status_code == 200, r.text
                    while (await other.get("/v1/access/roles", headers=staff.headers)).status_code != 200:
                        await asyncio.sleep(0.005)
                    for _ in range(3):  # warm the other process's cache
                        await other.get("/v1/access/roles", headers=staff.headers)
                    r = await client.delete(f"{roles_url}/support", headers=owner.headers)
                    assert r.status_code == 200, r.text
                    t0 = time.perf_counter()
                    while (await other.get("/v1/access/roles", headers=staff.headers)).status_code != 403:
                        if time.perf_counter() - t0 > 10:
                            raise RuntimeError("revoke never reached the other process")
                    delays.append(time.perf_counter() - t0)
            results["revoke_propagation_other_process"] = {
                "p50_ms": round(statistics.median(delays) * 1000, 2),
                "p99_ms": round(sorted(delays)[min(len(delays) - 1, int(0.99 * len(delays)))] * 1000, 2),
                "max_ms": round(max(delays) * 1000, 2),
                "n": len(delays),
            }
            return results
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        redis.stop()
        pg.stop()


def _measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kirana-bench-") as tmp:
        results = asyncio.run(measure(Path(tmp)))
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    return results


def run() -> list[Result]:
    """The figures as `make bench` results (tests/bench/run.py)."""
    r = _measure()
    cached, can, bearer = r["cached_authorization"], r["principal_can"], r["bearer_token_to_decision"]
    first = r["bearer_first_sight"]
    revoke = r["revoke_propagation_other_process"]
    return [
        Result(
            "permissions",
            "permission check per request (cached snapshot + check), p99",
            round(cached["p99_us"], 1),
            "us",
            target="< 500 us",
            meets_target=cached["p99_us"] < 500,
            notes=f"p50 {cached['p50_us']:.1f} us, n={cached['n']}; cache hits {r['cache']['hits']}, "
            f"loads {r['cache']['loads']}",
            extra=cached,
        ),
        Result(
            "permissions",
            "Principal.can on a resolved principal, p99",
            round(can["p99_us"], 2),
            "us",
            notes=f"p50 {can['p50_us']:.2f} us, n={can['n']}",
            extra=can,
        ),
        Result(
            "permissions",
            "bearer token to decision, token seen before (remembered verification + snapshot + check), p99",
            round(bearer["p99_us"], 1),
            "us",
            notes=f"p50 {bearer['p50_us']:.1f} us, n={bearer['n']}",
            extra=bearer,
        ),
        Result(
            "permissions",
            "bearer token to decision, token seen first (Ed25519 verify + snapshot + check), p99",
            round(first["p99_us"], 1),
            "us",
            notes=f"p50 {first['p50_us']:.1f} us, n={first['n']}",
            extra=first,
        ),
        Result(
            "permissions",
            "role revoked here until another process answers 403, max",
            revoke["max_ms"],
            "ms",
            target="< 1000 ms",
            meets_target=revoke["max_ms"] < 1000,
            notes=f"p50 {revoke['p50_ms']:.1f} ms, p99 {revoke['p99_ms']:.1f} ms, n={revoke['n']}",
            extra=revoke,
        ),
    ]


def main() -> None:
    results = _measure()
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    p99 = results["cached_authorization"]["p99_us"]
    revoke = results["revoke_propagation_other_process"]["max_ms"]
    sys.stdout.write(
        f"\npermission check (cached) p99 {p99:.1f} us (target < 500 us); "
        f"revoke reaches another process in at most {revoke:.0f} ms (target < 1000 ms)\n"
    )


if __name__ == "__main__":
    main()
