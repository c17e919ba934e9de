"""`kubectl kirana`'s verdicts without a cluster: when `wait` says Ready (0), Degraded (1) or gives
up (2), and the durations it takes."""

from __future__ import annotations

import argparse
import io
from typing import Any

import pytest

from kirana.operator.cli import parse_duration, release_verdict, render_history, wait


def obj(
    phase: str, current: str | None, version: str = "2.0.0", seen: bool = True, **conds: str
) -> dict[str, Any]:
    conditions = [
        {"type": t, "status": s, "reason": "MigrationFailed", "message": "boom"} for t, s in conds.items()
    ]
    return {
        "metadata": {"generation": 4},
        "spec": {"version": version},
        "status": {
            "phase": phase,
            "currentVersion": current,
            "observedGeneration": 4 if seen else 3,
            "conditions": conditions,
        },
    }


@pytest.mark.parametrize(
    ("o", "code", "sentence"),
    [
        (obj("Ready", "2.0.0"), 0, "2.0.0 is Ready"),
        (obj("Ready", "1.0.0"), None, "phase Ready"),  # the old version, before the release starts
        (obj("Ready", "2.0.0", seen=False), None, "the operator has not seen the latest spec yet"),
        (obj("Migrating", "1.0.0"), None, "phase Migrating"),
        (obj("Degraded", "1.0.0", Degraded="True"), 1, "release of 2.0.0 failed: MigrationFailed: boom"),
        (obj("RollingBack", "1.0.0", Degraded="False"), None, "phase RollingBack"),
        (obj("Paused", "1.0.0"), None, "phase Paused"),
    ],
)
def test_release_verdict(o: dict[str, Any], code: int | None, sentence: str) -> None:
    assert release_verdict(o) == (code, sentence)


def test_wait_prints_each_change_once_and_times_out_with_2() -> None:
    t = [0.0]
    reads = iter([obj("Migrating", "1.0.0")] * 3 + [obj("Baking", "1.0.0")] * 10)
    out = io.StringIO()

    def sleep(s: float) -> None:
        t[0] += s

    code = wait(lambda: next(reads), 10, out, poll=2, clock=lambda: t[0], sleep=sleep)
    assert code == 2
    assert out.getvalue().splitlines() == [
        "phase Migrating",
        "phase Baking",
        "timed out after 10s (phase Baking)",
    ]


def test_wait_returns_the_verdict() -> None:
    reads = iter([obj("Migrating", "1.0.0"), obj("Degraded", "1.0.0", Degraded="True")])
    assert wait(lambda: next(reads), 60, io.StringIO(), sleep=lambda _: None) == 1


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("90s", 90), ("1h30m", 5400), ("45", 45)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15x", "m", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_history_newest_first() -> None:
    entry = {"startedAt": "2026-12-01T10:00:00Z", "finishedAt": "2026-12-01T10:05:00Z"}
    o = {
        "status": {
            "history": [
                {"version": "2.0.0", "outcome": "Failed", "reason": "MigrationFailed", **entry},
                {"version": "1.0.0", "outcome": "Succeeded", "reason": "Released", **entry},
            ]
        }
    }
    lines = render_history(o).splitlines()
    assert lines[0].split() == ["VERSION", "OUTCOME", "STARTED", "FINISHED", "REASON"]
    assert lines[1].split()[:2] == ["2.0.0", "Failed"] and lines[1].endswith("MigrationFailed")
    assert lines[2].split()[:2] == ["1.0.0", "Succeeded"]
