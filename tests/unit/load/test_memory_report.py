"""The soak's memory summary and what the report says about stress and memory."""

from __future__ import annotations

import json
from pathlib import Path

import psutil

from tests.load import memory, report

PNG = b"\x89PNG\r\n\x1a\n"


def test_growth_compares_the_edges_medians_not_one_spike() -> None:
    samples = [(float(t), 100.0) for t in range(0, 500, 10)] + [(500.0, 400.0)]  # one spike
    samples += [(float(t), 130.0) for t in range(510, 3610, 10)] + [(3600.0, 130.0)]
    got = memory.summary(samples)
    assert got is not None
    assert (got["start_mb"], got["end_mb"], got["peak_mb"], got["growth_mb"]) == (100.0, 130.0, 400.0, 30.0)
    assert got["growth_mb_per_hour"] == 30.0
    assert memory.summary([(0.0, 1.0)]) is None


def test_the_api_process_must_be_the_one_the_record_names() -> None:
    me = psutil.Process()
    assert memory.api_process({"children": {"api": [me.pid, me.create_time()]}}) is not None
    assert memory.api_process({"children": {"api": [me.pid, me.create_time() - 100]}}) is None
    assert memory.api_process({}) is None
    mb, n = memory.rss_mb(me)
    assert mb > 1 and n >= 1


def _stats(out: Path) -> None:
    head = "Type,Name,Request Count,Failure Count,50%,95%,99%,Max Response Time,Requests/s\n"
    (out / "stats_stats.csv").write_text(
        head + "GET,browse: listing,10,0,5,9,9,12,1.0\n,Aggregated,10,0,5,9,9,12,1\n"
    )
    hist = "Timestamp,Name,User Count,Requests/s,Failures/s,50%,95%\n"
    (out / "stats_stats_history.csv").write_text(
        hist + "100,Aggregated,2,1,0,5,9\n101,Aggregated,4,2,0,6,9\n"
    )


def test_the_report_says_where_a_stress_run_broke_and_charts_memory(tmp_path: Path) -> None:
    _stats(tmp_path)
    stress = {"broke": True, "step": 4, "users": 20, "reason": "p95 900 ms > 500 ms", "held_users": 15}
    mem = {
        "start_mb": 200.0,
        "end_mb": 230.5,
        "peak_mb": 240.0,
        "growth_mb": 30.5,
        "growth_mb_per_hour": 61.0,
    }
    verdict = {"thresholds": "t.toml", "passed": False, "breaches": ["stress: ..."], "stress": stress}
    (tmp_path / "verdict.json").write_text(json.dumps(verdict | {"api_memory": mem}))
    (tmp_path / "memory.csv").write_text("t_s,rss_mb,processes\n0,200,3\n2,230.5,3\n")
    text = report.make(tmp_path).read_text()
    assert "**broke at step 4 with 20 users** (p95 900 ms > 500 ms)" in text
    assert "the last step that held had 15 users" in text
    assert "**+30.5 MB** (+61.0 MB/hour)" in text
    assert "](memory.png)" in text and (tmp_path / "memory.png").read_bytes()[:8] == PNG


def test_the_report_of_a_stress_run_that_held(tmp_path: Path) -> None:
    _stats(tmp_path)
    verdict = {
        "thresholds": "t",
        "passed": True,
        "breaches": [],
        "stress": {"broke": False, "held_users": 50, "steps": 10},
    }
    (tmp_path / "verdict.json").write_text(json.dumps(verdict))
    text = report.make(tmp_path).read_text()
    assert "stress: **held** all 10 steps, up to 50 users" in text and "memory.png" not in text
