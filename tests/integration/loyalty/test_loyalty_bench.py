"""The loyalty benchmark runs end to end on a tiny load (its figures are not looked at)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.bench import bench_loyalty


async def test_the_loyalty_benchmark_runs_on_a_tiny_load() -> None:
    # Not under pytest's temp dir: another pytest session may reset its parent to mode 0700,
    # locking out the PostgreSQL server, which runs as its own user (see tests/integration/conftest.py).
    base = Path(tempfile.mkdtemp(prefix="kirana-test-loyalty-bench-"))
    try:
        r = await bench_loyalty.measure(
            base, customers=300, award_customers=40, orders=120, reads=150, readers=10, pgbench_seconds=1
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert r["paid"]["n"] == 120 and r["paid"]["changed"] == 120
    assert r["delivered"]["n"] == 120 and r["delivered"]["changed"] == 120
    assert r["pgbench"]["requests"] > 0 and r["pgbench"]["errors"] == 0
    assert r["boards"]["ranked"] == 300
    assert r["http"]["n"] == 150 and r["bare"]["n"] == 150
    assert r["wrk"]["n"] > 0  # the same reads from wrk, every answer a 2xx (wrk_reads raises otherwise)
