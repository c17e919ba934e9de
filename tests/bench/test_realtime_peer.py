"""The real-time benchmark's Centrifugo side on a tiny load, against the real pinned binary.

Not part of `make test` (it collects tests/unit, tests/integration and tests/delivery): the
binary is a Go build of minutes that neither `make tools` nor CI makes. Run it after changing
tests/bench/realtime_peer.py or the Centrifugo pin; it builds the binary first when it is not
in the cache (`testbed/tools.sh centrifugo`), so it never skips:

    uv run pytest tests/bench/test_realtime_peer.py

`make test` still covers the driver's frame parsing and configuration without the binary
(tests/unit/realtime/test_bench_peer.py), and the rest of the benchmark on a tiny load
(tests/integration/realtime/test_realtime_bench.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.bench import bench_realtime, realtime_peer

pytestmark = pytest.mark.timeout(1800)  # a first run builds Centrifugo


def test_every_configuration_key_is_one_centrifugo_knows(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(realtime_peer.config(8000, "redis://127.0.0.1:6379/0", "s" * 64, "k" * 32)))
    out = subprocess.run(
        [str(realtime_peer.binary()), "checkconfig", "--strict", "--config", str(path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr  # --strict: an unknown key fails


async def test_centrifugo_is_driven_with_the_same_load_on_several_accounts(tmp_path: Path) -> None:
    """7 sockets over 3 accounts (a cap of 3 each): one broadcast reaches every account's channel."""
    per = bench_realtime.PER_ACCOUNT
    bench_realtime.PER_ACCOUNT = 3
    try:
        r = await bench_realtime.measure(
            tmp_path, idle=7, sockets=7, events=4, rate=20, centrifugo=realtime_peer.binary()
        )
    finally:
        bench_realtime.PER_ACCOUNT = per
    for side in ("kirana", "bare", "centrifugo"):
        assert r[side]["n"] == 28, (side, r[side])
        assert r[side]["idle_sockets"] == 7 and r[side]["fan_out"] == 7
    c = r["centrifugo"]
    assert 0 < c["p50_ms"] <= c["p95_ms"] <= c["p99_ms"] <= c["max_ms"]
    assert c["messages_per_s"] > 0 and c["connects_per_s"] > 0
