"""The real-time benchmark runs end to end on a tiny load (its figures are not looked at).

Kirana's and the bare sides only: Centrifugo's needs its binary, a Go build of minutes that CI does
not make, so it runs in tests/bench/test_realtime_peer.py (not part of `make test`; it builds the
binary when missing rather than skip).
"""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from tests.bench import bench_realtime, ws_fleet


async def test_the_realtime_benchmark_runs_on_a_tiny_load(tmp_path: Path) -> None:
    r = await bench_realtime.measure(tmp_path, idle=20, sockets=5, events=4, rate=20)
    assert r["kirana"]["n"] == 20 and r["bare"]["n"] == 20
    assert "centrifugo" not in r  # measured only when its binary is given
    assert r["kirana"]["idle_sockets"] == 20 and r["kirana"]["fan_out"] == 5
    k = r["kirana"]
    assert 0 < k["p50_ms"] <= k["p95_ms"] <= k["p99_ms"] <= k["max_ms"]


async def test_sockets_beyond_one_account_cap_are_spread_over_accounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over `PER_ACCOUNT` sockets need a second account, or the per-user cap refuses them."""
    monkeypatch.setattr(bench_realtime, "PER_ACCOUNT", 3)
    r = await bench_realtime.measure(tmp_path, idle=7, sockets=7, events=2, rate=20)
    assert r["kirana"]["n"] == 14 and r["kirana"]["idle_sockets"] == 7


async def test_the_client_sockets_are_spread_over_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `ws_fleet.PER_PROCESS` sockets the clients run in more processes, and every socket
    of every process still gets every event."""
    monkeypatch.setattr(ws_fleet, "PER_PROCESS", 4)
    r = await bench_realtime.measure(tmp_path, idle=9, sockets=9, events=3, rate=20)
    assert r["kirana"]["client_processes"] == 3 and r["bare"]["client_processes"] == 3
    assert r["kirana"]["n"] == 27 and r["bare"]["n"] == 27


def test_idle_sockets_asked_for_are_capped_by_the_open_file_limit() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert bench_realtime.idle_ceiling(50) == 50
    if hard != resource.RLIM_INFINITY:
        assert bench_realtime.idle_ceiling(hard * 2) == hard - bench_realtime.FD_MARGIN
