"""The real-time benchmark runs end to end on a tiny load (its figures are not looked at)."""

from __future__ import annotations

from pathlib import Path

from tests.bench import bench_realtime


async def test_the_realtime_benchmark_runs_on_a_tiny_load(tmp_path: Path) -> None:
    r = await bench_realtime.measure(tmp_path, idle=20, sockets=5, events=4, rate=20)
    assert r["kirana"]["n"] == 20 and r["bare"]["n"] == 20
    assert r["kirana"]["idle_sockets"] == 20
