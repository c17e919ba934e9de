"""The real-time benchmark runs end to end on a tiny load (its figures are not looked at).

Kirana's and the bare sides only: Centrifugo's needs its binary, a Go build of minutes that CI does
not make, so it runs in tests/bench/test_realtime_peer.py (not part of `make test`; it builds the
binary when missing rather than skip).
"""

from __future__ import annotations

from pathlib import Path

from tests.bench import bench_realtime


async def test_the_realtime_benchmark_runs_on_a_tiny_load(tmp_path: Path) -> None:
    r = await bench_realtime.measure(tmp_path, idle=20, sockets=5, events=4, rate=20)
    assert r["kirana"]["n"] == 20 and r["bare"]["n"] == 20
    assert "centrifugo" not in r  # measured only when its binary is given
    assert r["kirana"]["idle_sockets"] == 20 and r["kirana"]["fan_out"] == 5
    k = r["kirana"]
    assert 0 < k["p50_ms"] <= k["p95_ms"] <= k["p99_ms"] <= k["max_ms"]


async def test_sockets_beyond_one_account_cap_are_spread_over_accounts(tmp_path: Path) -> None:
    """Over `PER_ACCOUNT` sockets need a second account, or the per-user cap refuses them."""
    per = bench_realtime.PER_ACCOUNT
    bench_realtime.PER_ACCOUNT = 3
    try:
        r = await bench_realtime.measure(tmp_path, idle=7, sockets=7, events=2, rate=20)
    finally:
        bench_realtime.PER_ACCOUNT = per
    assert r["kirana"]["n"] == 14 and r["kirana"]["idle_sockets"] == 7
