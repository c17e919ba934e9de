"""`make load`: one headless Locust run against a shop, then its report; exits as the thresholds say.

    python -m tests.load.run [--host URL] [--users N] [--duration S] [--shape NAME]
                             [--thresholds FILE] [--razorpay URL] [--sms URL] [--out DIR]

With no `--host`, the shop `kirana run` / `make run` records in `.local/run.json` (or
`KIRANA_DATA_DIR`), its fake Razorpay and its SMS gateway (whose inbox gives the sign-up
codes). Results go to `bench/results/load/<time>/` unless `--out` says otherwise. Exit 0:
thresholds met; 1: a breach (or Locust failed); 2: bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.load import memory, report, shapes, thresholds

REPO = Path(__file__).resolve().parents[2]


def _run_record(path: Path | None = None) -> dict[str, Any]:
    data = Path(os.environ.get("KIRANA_DATA_DIR") or REPO / ".local")
    path = path or data / "run.json"
    if not path.exists():
        return {}
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def _add_to_verdict(path: Path, key: str, value: Any) -> None:
    if value is None or not path.exists():
        return
    verdict = json.loads(path.read_text())
    verdict[key] = value
    path.write_text(json.dumps(verdict, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make load", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="", help="the shop's base URL (default: the local `kirana run`)")
    p.add_argument("--users", type=int, default=10, help="peak simulated users")
    p.add_argument("--duration", type=float, default=None, help="seconds (60; soak: 1800)")
    p.add_argument("--shape", default="smoke", choices=shapes.SHAPES)
    p.add_argument("--thresholds", type=Path, default=thresholds.DEFAULT_FILE)
    p.add_argument(
        "--razorpay", default=None, help="the fake Razorpay (default: the local run's; '' for none)"
    )
    p.add_argument("--sms", default=None, help="the SMS gateway's base URL (default: the local run's)")
    p.add_argument(
        "--record",
        type=Path,
        default=None,
        help="the `kirana run` record to read (default: run.json in KIRANA_DATA_DIR or .local)",
    )
    p.add_argument("--staff-users", type=int, default=0, help="a fixed count of staff users (0: by weight)")
    p.add_argument("--webhook-users", type=int, default=0, help="a fixed count of webhook users")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = shapes.SOAK_DEFAULT_S if args.shape == "soak" else 60.0
    record = _run_record(args.record)
    host = (args.host or record.get("api_url", "")).rstrip("/")
    if not host:
        print("error: no --host and no `kirana run` recorded in .local/run.json", file=sys.stderr)  # noqa: T201
        return 2
    razorpay = args.razorpay
    if razorpay is None:
        razorpay = (
            record.get("razorpay_base_url", "") if host == record.get("api_url", "").rstrip("/") else ""
        )
    sms = args.sms
    if sms is None:
        sms = record.get("sms_gateway_url", "") if host == record.get("api_url", "").rstrip("/") else ""
    local = host == str(record.get("api_url", "")).rstrip("/")
    secrets = {  # the webhook users sign with the run's secret and read its fake's payments
        f"KIRANA_LOAD_RAZORPAY_{name.upper()}": str(record.get(f"razorpay_{name}", "")) if local else ""
        for name in ("webhook_secret", "key_id", "key_secret")
    }
    try:
        thresholds.load(args.thresholds)
        shapes.plan(args.shape, users=args.users, duration_s=args.duration)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    out = args.out or REPO / "bench" / "results" / "load" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "KIRANA_LOAD_SHAPE": args.shape,
        "KIRANA_LOAD_USERS": str(args.users),
        "KIRANA_LOAD_DURATION_S": str(args.duration),
        "KIRANA_LOAD_THRESHOLDS": str(args.thresholds.resolve()),
        "KIRANA_LOAD_RAZORPAY_URL": razorpay,
        "KIRANA_LOAD_SMS_URL": sms,
        "KIRANA_LOAD_OUT": str(out),
        "KIRANA_LOAD_STAFF_USERS": str(args.staff_users),
        "KIRANA_LOAD_WEBHOOK_USERS": str(args.webhook_users),
        **secrets,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
    }
    cmd = [
        sys.executable, "-m", "locust", "-f", str(REPO / "tests" / "load" / "locustfile.py"),
        "--headless", "--host", host, "--csv", str(out / "stats"), "--csv-full-history",
        "--html", str(out / "locust.html"), "--exit-code-on-error", "0", "--stop-timeout", "15",
        "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    api = memory.api_process(record) if local else None  # the API's memory, when it is ours to see
    sampler = (
        memory.Sampler(api, out / "memory.csv", every_s=10 if args.duration > 600 else 2) if api else None
    )
    if sampler is not None:
        sampler.start()
    try:
        code = subprocess.run(cmd, env=env, cwd=REPO, check=False).returncode
    finally:
        if sampler is not None:
            sampler.stop()
    if sampler is not None:
        _add_to_verdict(out / "verdict.json", "api_memory", memory.summary(memory.read(out / "memory.csv")))
    if (out / "stats_stats.csv").exists():
        meta = {
            "host": host,
            "shape": args.shape,
            "users": args.users,
            "duration s": args.duration,
            "fake Razorpay": razorpay or "none (shoppers cancel at checkout)",
            "locust exit": code,
        }
        print(f"report: {report.make(out, meta)}")  # noqa: T201
    return 1 if code else 0


if __name__ == "__main__":
    sys.exit(main())
