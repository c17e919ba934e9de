"""The picture of a load run: PNG charts and a Markdown summary from Locust's CSV files.

`make(out)` reads `<out>/stats_stats.csv` and `<out>/stats_stats_history.csv` (Locust's
`--csv <out>/stats --csv-full-history`) and `<out>/verdict.json` (the threshold check), and
writes `<out>/report.md` with `throughput.png`, `latency.png`, `users.png` and `steps.png`
(and `memory.png` from `<out>/memory.csv` when the API's memory was sampled).
Called by tests/load/run.py after Locust exits; `python -m tests.load.report OUT` redoes it.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

from tests.load import memory  # noqa: E402


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _num(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:  # Locust writes "N/A" before the first response
        return 0.0


def _series(history: list[dict[str, str]]) -> dict[str, list[float]]:
    agg = [r for r in history if r["Name"] == "Aggregated"]
    t0 = _num(agg[0]["Timestamp"]) if agg else 0.0
    return {
        "t": [_num(r["Timestamp"]) - t0 for r in agg],
        "users": [_num(r["User Count"]) for r in agg],
        "rps": [_num(r["Requests/s"]) for r in agg],
        "fails": [_num(r["Failures/s"]) for r in agg],
        "p50": [_num(r["50%"]) for r in agg],
        "p95": [_num(r["95%"]) for r in agg],
    }


def _chart(path: Path, title: str, x: list[float], lines: dict[str, list[float]], ylabel: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    for label, ys in lines.items():
        ax.plot(x, ys, label=label)
    ax.set_title(title)
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _steps_chart(path: Path, steps: list[dict[str, str]]) -> None:
    names = [r["Name"] for r in steps]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.2), dpi=100)
    ax.barh(names, [_num(r["95%"]) for r in steps], label="p95")
    ax.barh(names, [_num(r["50%"]) for r in steps], label="p50")
    ax.set_xlabel("ms")
    ax.set_title("latency per journey step")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def make(out: Path, meta: dict[str, Any] | None = None) -> Path:
    """Write the charts and `report.md` into `out`; returns the report's path."""
    stats = _rows(out / "stats_stats.csv")
    history = _rows(out / "stats_stats_history.csv")
    steps = [r for r in stats if r["Name"] != "Aggregated"]
    total = next((r for r in stats if r["Name"] == "Aggregated"), None)
    s = _series(history)
    _chart(
        out / "throughput.png",
        "requests and failures per second",
        s["t"],
        {"requests/s": s["rps"], "failures/s": s["fails"]},
        "per second",
    )
    _chart(
        out / "latency.png", "response time (all requests)", s["t"], {"p50": s["p50"], "p95": s["p95"]}, "ms"
    )
    _chart(out / "users.png", "simulated users", s["t"], {"users": s["users"]}, "users")
    _steps_chart(out / "steps.png", steps)
    charts = ["throughput.png", "latency.png", "users.png", "steps.png"]
    if (out / "memory.csv").exists() and (samples := memory.read(out / "memory.csv")):
        _chart(
            out / "memory.png",
            "API memory (RSS, API process tree)",
            [t for t, _ in samples],
            {"RSS MB": [mb for _, mb in samples]},
            "MB",
        )
        charts.append("memory.png")
    verdict_path = out / "verdict.json"
    verdict = json.loads(verdict_path.read_text()) if verdict_path.exists() else None
    lines = [f"# Load run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
    for key, value in (meta or {}).items():
        lines.append(f"- {key}: `{value}`")
    if verdict is None:
        lines.append("- thresholds: **not checked** (no verdict.json)")
    else:
        lines.append(
            f"- thresholds (`{verdict['thresholds']}`): **{'passed' if verdict['passed'] else 'FAILED'}**"
        )
        lines += [f"  - {b}" for b in verdict["breaches"]]
        stress = verdict.get("stress")
        if stress:
            lines.append(
                f"- stress: **broke at step {stress['step']} with {stress['users']} users**"
                f" ({stress['reason']}); the last step that held had {stress['held_users']} users"
                if stress["broke"]
                else f"- stress: **held** all {stress['steps']} steps, up to {stress['held_users']} users"
            )
        mem = verdict.get("api_memory")
        if mem:
            lines.append(
                f"- API memory (RSS of the `kirana run` API processes): {mem['start_mb']} MB at the start,"
                f" {mem['end_mb']} MB at the end, peak {mem['peak_mb']} MB: **{mem['growth_mb']:+} MB**"
                f" ({mem['growth_mb_per_hour']:+} MB/hour)"
            )
    lines += [
        "",
        "| step | requests | failures | p50 ms | p95 ms | p99 ms | max ms | req/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in steps + ([total] if total else []):
        lines.append(
            f"| {r['Type']} {r['Name']} | {r['Request Count']} | {r['Failure Count']} "
            f"| {r['50%']} | {r['95%']} | {r['99%']} | {_num(r['Max Response Time']):.0f} "
            f"| {_num(r['Requests/s']):.1f} |"
        )
    lines.append("")
    for chart in charts:
        lines += [f"![{chart.removesuffix('.png')}]({chart})", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report


if __name__ == "__main__":
    print(make(Path(sys.argv[1])))  # noqa: T201 - a command's answer
