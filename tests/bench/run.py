"""`make bench`: run every benchmark, write bench/results/<name>.json and BENCHMARKS.md.

`python -m tests.bench.run [name ...]` runs only the named benchmarks; the others keep their
last results in BENCHMARKS.md.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.bench import seed
from tests.bench.harness import REPO, Result, machine

BENCHMARKS = {
    "http": "tests.bench.bench_http",
    "commerce": "tests.bench.bench_commerce",
    "permissions": "tests.bench.bench_permissions",
    "reset_timing": "tests.bench.bench_reset_timing",
    "operator": "tests.bench.bench_operator",
    "realtime": "tests.bench.bench_realtime",
    "payments": "tests.bench.bench_payments",
    "search": "tests.bench.bench_search",
    "loyalty": "tests.bench.bench_loyalty",
}
RESULTS = REPO / "bench" / "results"
console = Console()


def _fmt(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"


def write_markdown() -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m tests.bench.run`); each section names the command,",
        "the machine and the time it ran. Targets are floors; where a bare limit exists it was",
        "measured in the same run and the ratio is Kirana's figure divided by it.",
        "",
        *seed.section(),
        *seed.load_section(),
    ]
    for name in BENCHMARKS:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        m = data["machine"]
        lines += [
            f"## {name}",
            "",
            f"`{data['command']}` at {data['finished_at']} on {m['cpus']} cores ({m['cpu']}), "
            f"{m['memory_gib']} GiB, Python {m['python']}; took {data['seconds']:.0f} s.",
            "",
            "| metric | value | target | met | bare limit | ratio | notes |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in data["results"]:
            met = "" if r["meets_target"] is None else ("yes" if r["meets_target"] else "**no**")
            base = f"{_fmt(r['baseline'])} ({r['baseline_name']})" if r["baseline"] else ""
            ratio = f"{r['ratio']:.2f}" if r["ratio"] else ""
            lines.append(
                f"| {r['metric']} | {_fmt(r['value'])} {r['unit']} | {r['target']} | {met} | {base} "
                f"| {ratio} | {r['notes']} |"
            )
        lines.append("")
    (REPO / "BENCHMARKS.md").write_text("\n".join(lines))


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        console.print(
            f"[red]error:[/] unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}"
        )
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed = False
    for name in names:
        console.print(f"[bold]benchmark {name}[/] …")
        t0 = time.monotonic()
        module = importlib.import_module(BENCHMARKS[name])
        results: list[Result] = module.run()
        payload: dict[str, Any] = {
            "command": f"make bench  (python -m tests.bench.run {name})",
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": time.monotonic() - t0,
            "machine": machine(),
            "results": [r.as_dict() for r in results],
        }
        (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
        table = Table("metric", "value", "target", "bare limit", "ratio", title=name)
        for r in results:
            ok = "" if r.meets_target is None else (" ✓" if r.meets_target else " ✗")
            table.add_row(
                r.metric,
                f"{_fmt(r.value)} {r.unit}{ok}",
                r.target,
                _fmt(r.baseline),
                f"{r.ratio:.2f}" if r.ratio else "",
            )
            failed |= r.meets_target is False
        console.print(table)
    write_markdown()
    console.print("wrote BENCHMARKS.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
