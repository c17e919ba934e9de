"""The payments benchmark runs end to end on a tiny load (its figures are not looked at)."""

from __future__ import annotations

from pathlib import Path

from tests.bench import bench_payments


async def test_the_payments_benchmark_runs_on_a_tiny_load(tmp_path: Path) -> None:
    r = await bench_payments.measure(tmp_path, events=60, verifies=3)
    assert r["kirana"]["n"] == 60 and r["bare"]["n"] == 60 and r["verify"]["n"] == 3
