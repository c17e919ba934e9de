"""A tiny headless Locust run of tests/load against a real `kirana run`: every journey step runs
(sign-up, browse, cart, checkout, paying through the fake Razorpay, the socket's paid frame), the
report and its charts are written, and the thresholds decide the exit code.

Five users (one staff, one webhook sender) for 40 s: a smoke test of the load kit, not a
measurement (the machine is shared).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.localrun import REPO, clean_env, running, scratch_dir

PNG = b"\x89PNG\r\n\x1a\n"


def verdict_memory(out: Path) -> dict[str, float]:
    found: dict[str, float] = json.loads((out / "verdict.json").read_text())["api_memory"]
    return found


def _load(tmp: Path, name: str, thresholds: str, run_args: list[str]) -> tuple[int, Path, str]:
    limits = tmp / f"{name}.toml"
    limits.write_text(thresholds)
    out = tmp / name
    proc = subprocess.run(
        [sys.executable, "-m", "tests.load.run", "--thresholds", str(limits), "--out", str(out), *run_args],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    return proc.returncode, out, proc.stdout + proc.stderr


def _why(load_output: str, run_output: str, server_logs: str) -> str:
    """What failed first (the breached thresholds, the load's errors, what the shop's API and
    worker logged), then the whole load output: a CI log shows the head of a long message."""
    errors = [line for line in load_output.splitlines() if "ERROR" in line or "Error:" in line]
    # a JSON log line carries the message first and the exception's text last: keep both ends
    logged = [
        line if len(line) <= 600 else f"{line[:300]} … {line[-300:]}"
        for line in run_output.splitlines()
        if line.strip()
    ]
    return "\n".join(
        [
            "load errors:",
            *errors[:20],
            "`kirana run` said (WARNING and up; long lines cut to both ends, the first 80):",
            *logged[:80],
            server_logs,
            "the load run's output:",
            load_output,
        ]
    )


@pytest.mark.timeout(900)
@pytest.mark.xdist_group("run")  # `kirana run` on the default ports: one at a time
def test_a_smoke_load_run_reports_and_its_thresholds_set_the_exit_code(tmp_path: Path) -> None:
    data = scratch_dir("load")
    with running(data, cleanup=data, env={"KIRANA_SEED_CATALOG_PRODUCTS": "200"}) as run:
        state = run.state()
        args = ["--host", run.base, "--razorpay", state["razorpay_base_url"], "--shape", "smoke"]
        args += ["--sms", state["sms_gateway_url"], "--record", str(run.state_path)]
        staffed = ["--staff-users", "1", "--webhook-users", "1"]  # fixed counts beside 3 by weight

        # Real limits on errors and on every step having run; latency is left loose because the
        # machine running the suite is busy (docs/load-testing.md gives the real figures).
        met = """
[total]
max_error_ratio = 0.01
[default]
p95_ms = 60000
max_error_ratio = 0.05
[step."checkout"]
min_requests = 1
[step."pay: verify"]
min_requests = 1
[step."ws: order paid"]
min_requests = 1
[step."staff: move order"]
min_requests = 1
[step."staff: refund"]
min_requests = 1
[step."webhook: delivery"]
min_requests = 1
[step."webhook: duplicate"]
min_requests = 1
"""
        code, out, output = _load(tmp_path, "met", met, [*args, *staffed, "--users", "5", "--duration", "38"])
        assert code == 0, _why(output, run.stop(), run.server_logs())
        verdict = json.loads((out / "verdict.json").read_text())
        assert verdict.pop("api_memory")
        assert verdict == {"thresholds": str(tmp_path / "met.toml"), "passed": True, "breaches": []}
        with (out / "stats_stats.csv").open() as f:
            rows = {r["Name"]: r for r in csv.DictReader(f)}
        for step in ("shopper: sign up", "browse: listing", "cart: add line", "checkout", "pay: verify"):
            assert int(rows[step]["Request Count"]) >= 1, step
        assert int(rows["ws: order paid"]["Failure Count"]) == 0
        for step in ("staff: move order", "staff: refund", "webhook: delivery", "webhook: duplicate"):
            assert int(rows[step]["Request Count"]) >= 1 and int(rows[step]["Failure Count"]) == 0, rows[step]
        report = (out / "report.md").read_text()
        assert "**passed**" in report and "| POST checkout |" in report
        assert verdict_memory(out)["end_mb"] > 0  # the API's RSS, sampled from the run record's pid
        for chart in ("throughput.png", "latency.png", "users.png", "steps.png", "memory.png"):
            assert f"]({chart})" in report
            assert (out / chart).read_bytes()[:8] == PNG, chart

        impossible = "[default]\np95_ms = 0.001\n"
        code, out, output = _load(
            tmp_path, "impossible", impossible, [*args, "--users", "2", "--duration", "8"]
        )
        assert code == 1, output
        verdict = json.loads((out / "verdict.json").read_text())
        assert verdict["passed"] is False
        assert any("p95" in b and "> 0.001 ms" in b for b in verdict["breaches"]), verdict
        assert "**FAILED**" in (out / "report.md").read_text()

        # Stress: an impossible p95 breaks the first step with a request; it stops there and says so.
        breaking = "[total]\np95_ms = 0.001\nmin_requests = 1\n"
        code, out, output = _load(
            tmp_path, "stress", breaking, [*args, "--shape", "stress", "--users", "10", "--duration", "10"]
        )
        assert code == 0, output
        stress = json.loads((out / "verdict.json").read_text())["stress"]
        assert stress["broke"] is True and stress["step"] >= 1 and stress["reason"].startswith("p95 ")
        assert (
            f"**broke at step {stress['step']} with {stress['users']} users**"
            in (out / "report.md").read_text()
        )

        code, _, output = _load(tmp_path, "bad", "[default]\np99 = 1\n", args)
        assert code == 2 and "unknown threshold keys: p99" in output
