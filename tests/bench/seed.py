"""The planning document's performance table, measured: each of its targets beside the figure
that answers it, taken from the benchmark results (bench/results/*.json) and from the committed
50-user load run (bench/results/load/load-50: Locust's stats_stats.csv).

    python -m tests.bench.seed     # rewrites BENCHMARKS.md (this table and the load section in it)

`make test-performance` runs the benchmarks and that load run first, then this. A target whose
source has not been measured yet is listed with "not measured", never guessed.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench.harness import REPO

RESULTS = REPO / "bench" / "results"
LOAD_RUN = RESULTS / "load" / "load-50"


@dataclass(frozen=True)
class Row:
    target: str  # as the planning document puts it
    limit: str
    figure: str
    met: bool | None  # None: not measured
    source: str


def _bench(name: str, metric: str, results: Path) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    if not path.exists():
        return None
    for r in json.loads(path.read_text())["results"]:
        if r["metric"] == metric:
            return dict(r)
    return None


def _load_stats(run: Path) -> dict[str, dict[str, str]]:
    path = run / "stats_stats.csv"
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


def _ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def _to_ms(result: dict[str, Any]) -> float:
    return float(result["value"]) / {"us": 1000.0, "ms": 1.0, "s": 0.001}[result["unit"]]


def rows(run: Path = LOAD_RUN, results: Path = RESULTS) -> list[Row]:
    stats = _load_stats(run)
    total = stats.get("Aggregated")
    out: list[Row] = []

    perm = _bench(
        "permissions",
        "bearer token to decision, token seen first (Ed25519 verify + snapshot + check), p99",
        results,
    )
    out.append(
        Row(
            "Permission checks",
            "< 100 ms",
            f"{_to_ms(perm):.3f} ms p99 (a token never seen before: verify, snapshot, check)"
            if perm
            else "not measured",
            _to_ms(perm) < 100 if perm else None,
            "make bench only=permissions",
        )
    )

    search = [stats[n] for n in ("browse: search", "browse: suggest") if n in stats]
    worst = max((float(s["95%"]) for s in search), default=None)
    out.append(
        Row(
            "Search response",
            "< 200 ms",
            f"{_ms(worst)} p95 (search and suggest under the 50-user load, `make run`'s 3,000 products)"
            if worst is not None
            else "not measured",
            worst < 200 if worst is not None else None,
            "the load run",
        )
    )
    big = _bench("search", "search with facets p95, 100,000 products, 50 clients, page cache off", results)
    out.append(
        Row(
            "Search response",
            "< 200 ms",
            f"{_ms(_to_ms(big))} p95 (search with facets, 100,000 products, 50 clients)"
            if big
            else "not measured",
            _to_ms(big) < 200 if big else None,
            "make bench only=search",
        )
    )

    db = _bench(
        "commerce",
        "catalog listing p95, 50 clients closed loop, cache off (every request queries PostgreSQL)",
        results,
    )
    out.append(
        Row(
            "DB queries",
            "< 300 ms",
            f"{_ms(_to_ms(db))} p95 (a catalog page read from PostgreSQL, 50 clients, no cache)"
            if db
            else "not measured",
            _to_ms(db) < 300 if db else None,
            "make bench only=commerce",
        )
    )

    avg = float(total["Average Response Time"]) if total else None
    out.append(
        Row(
            "API average",
            "< 200 ms",
            f"{_ms(avg)} mean over {int(total['Request Count']):,} requests"
            if total and avg is not None
            else "not measured",
            avg < 200 if avg is not None else None,
            "the load run",
        )
    )

    orders = _bench("commerce", "sustained orders/s, 50 clients closed loop", results)
    p95 = _bench("commerce", "order placement p95, 50 clients closed loop", results)
    errors = re.search(r"errors (\d+)/(\d+)", p95["notes"]) if p95 else None
    if orders and p95 and errors:
        failed, placed = int(errors[1]), int(errors[2])
        figure = (
            f"50 clients at once: {orders['value']:,.0f} orders/s, p95 {_ms(_to_ms(p95))}, "
            f"{failed} of {placed:,} failed"
        )
        met: bool | None = failed == 0 and orders["value"] > 0
    else:
        figure, met = "not measured", None
    out.append(Row("Concurrent orders", "50+", figure, met, "make bench only=commerce"))

    if total:
        requests, failures = int(total["Request Count"]), int(total["Failure Count"])
        ratio = failures / requests if requests else 1.0
        figure = f"{ratio:.3%} ({failures:,} of {requests:,} requests)"
    else:
        ratio, figure = None, "not measured"
    out.append(
        Row("Error rate", "< 0.1 %", figure, ratio < 0.001 if ratio is not None else None, "the load run")
    )
    return out


def section(run: Path = LOAD_RUN) -> list[str]:
    report = run / "report.md"
    shown = run.relative_to(REPO) if run.is_relative_to(REPO) else run
    where = f"its report: {shown / 'report.md'}" if report.exists() else "not run yet"
    lines = [
        "## seed targets",
        "",
        "The planning document's table (`python -m tests.bench.seed`, run by `make test-performance`),",
        "each target beside the measured figure that answers it. The load run is",
        f"`{shown}` ({where}).",
        "",
        "| target | limit | measured | met | source |",
        "|---|---|---|---|---|",
    ]
    for r in rows(run):
        met = "not measured" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.target} | {r.limit} | {r.figure} | {met} | {r.source} |")
    return [*lines, ""]


def load_section(run: Path = LOAD_RUN) -> list[str]:
    """The committed load run at a glance: each journey's requests, failures and p95, and its charts."""
    stats = _load_stats(run)
    if not stats:
        return []
    shown = run.relative_to(REPO) if run.is_relative_to(REPO) else run
    report = (run / "report.md").read_text().splitlines() if (run / "report.md").exists() else []
    head = [
        f"- run: {line.removeprefix('# Load run ')}" for line in report[:1] if line.startswith("# Load run")
    ]
    head += [line for line in report[:12] if line.startswith("- ")]
    groups: dict[str, list[dict[str, str]]] = {}
    for name, row in stats.items():
        if name != "Aggregated":
            groups.setdefault(name.split(":")[0], []).append(row)
    lines = [
        "## load",
        "",
        f"The committed Locust run `{shown}` (`make test-performance`, or `make load USERS=50 "
        f"DURATION=600 SHAPE=load OUT={shown}` against `make run`); its full report is "
        f"[{shown}/report.md]({shown}/report.md).",
        "",
        *head,
        "",
        "| journey | requests | failures | worst step p95 | steps |",
        "|---|---:|---:|---:|---|",
    ]
    for group, rows_ in sorted(groups.items()):
        worst = max(rows_, key=lambda r: float(r["95%"]))
        lines.append(
            f"| {group} | {sum(int(r['Request Count']) for r in rows_):,} "
            f"| {sum(int(r['Failure Count']) for r in rows_):,} "
            f"| {float(worst['95%']):,.0f} ms ({worst['Name'].split(': ', 1)[-1]}) | {len(rows_)} |"
        )
    total = stats["Aggregated"]
    lines += [
        f"| **all** | {int(total['Request Count']):,} | {int(total['Failure Count']):,} | "
        f"{float(total['95%']):,.0f} ms (p95 of every request) | |",
        "",
    ]
    lines += [
        f"![{png}]({shown}/{png}.png)"
        for png in ("throughput", "latency", "users")
        if (run / f"{png}.png").exists()
    ]
    return [*lines, ""]


def main() -> int:
    from tests.bench.run import write_markdown

    write_markdown()
    for line in section():
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
