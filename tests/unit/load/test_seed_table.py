"""The planning document's target table: figures from a load run's CSV and the benchmark results."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.bench import seed

COLUMNS = ["Type", "Name", "Request Count", "Failure Count", "Average Response Time", "95%"]


def _run(tmp_path: Path, rows: list[list[str]]) -> Path:
    run = tmp_path / "load-50"
    run.mkdir()
    with (run / "stats_stats.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows)
    return run


def test_load_figures_and_their_verdicts(tmp_path: Path) -> None:
    run = _run(
        tmp_path,
        [
            ["GET", "browse: search", "900", "0", "40", "120"],
            ["GET", "browse: suggest", "500", "0", "10", "230"],
            ["", "Aggregated", "20000", "30", "150.5", "400"],
        ],
    )
    rows = seed.rows(run, results=tmp_path)
    got = {r.target: r for r in rows if r.source == "the load run"}
    # The worse of search and suggest answers "search response".
    assert got["Search response"].met is False and got["Search response"].figure.startswith("230 ms p95")
    assert got["API average"].met is True and "150 ms mean over 20,000 requests" in got["API average"].figure
    assert got["Error rate"].met is False and got["Error rate"].figure == "0.150% (30 of 20,000 requests)"


def test_what_was_not_measured_says_so(tmp_path: Path) -> None:
    got = seed.rows(tmp_path / "no-run", results=tmp_path)
    assert len(got) == 7
    for row in got:
        assert row.met is None and row.figure == "not measured", row
    table = seed.section(tmp_path / "no-run")
    assert "| Error rate | < 0.1 % | not measured | not measured | the load run |" in table


def test_the_load_summary_groups_steps_by_journey(tmp_path: Path) -> None:
    run = _run(
        tmp_path,
        [
            ["GET", "browse: search", "900", "1", "40", "120"],
            ["GET", "browse: suggest", "500", "0", "10", "230"],
            ["POST", "pay: verify", "100", "0", "30", "60"],
            ["", "Aggregated", "1500", "1", "25", "200"],
        ],
    )
    lines = seed.load_section(run)
    assert "| browse | 1,400 | 1 | 230 ms (suggest) | 2 |" in lines
    assert "| pay | 100 | 0 | 60 ms (verify) | 1 |" in lines
    assert "| **all** | 1,500 | 1 | 200 ms (p95 of every request) | |" in lines
    assert seed.load_section(tmp_path / "never-run") == []


def test_benchmark_rows_read_their_units_and_failures(tmp_path: Path) -> None:
    def result(metric: str, value: float, unit: str, notes: str = "") -> dict[str, object]:
        return {"metric": metric, "value": value, "unit": unit, "notes": notes}

    (tmp_path / "permissions.json").write_text(
        json.dumps(
            {
                "results": [
                    result(
                        "bearer token to decision, token seen first (Ed25519 verify + snapshot + check), p99",
                        230.8,
                        "us",
                    )
                ]
            }
        )
    )
    (tmp_path / "commerce.json").write_text(
        json.dumps(
            {
                "results": [
                    result(
                        "catalog listing p95, 50 clients closed loop, cache off "
                        "(every request queries PostgreSQL)",
                        0.31,
                        "s",
                    ),
                    result("sustained orders/s, 50 clients closed loop", 846.5, "orders/s"),
                    result(
                        "order placement p95, 50 clients closed loop", 84.6, "ms", "p50 56.7, errors 3/12742"
                    ),
                ]
            }
        )
    )
    got = {r.target: r for r in seed.rows(tmp_path / "no-run", results=tmp_path)}
    assert got["Permission checks"].met is True and got["Permission checks"].figure.startswith("0.231 ms")
    assert got["DB queries"].met is False and got["DB queries"].figure.startswith("310 ms")
    orders = got["Concurrent orders"]
    assert orders.met is False and orders.figure.endswith("3 of 12,742 failed")  # a failed order fails it
