"""`make test-load`'s runner: which shop it uses before it would start one."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from kirana.api import localshop
from tests.load import run, withrun


def _record(data: Path, pid: int, started: float) -> None:
    state = localshop.RunState(pid=pid, started=started, api_url="http://127.0.0.1:1", status="ready")
    localshop.write(data, state)


def test_a_live_kirana_run_is_used_and_a_dead_ones_record_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIRANA_DATA_DIR", str(tmp_path))
    assert withrun.live_record() is None
    me = psutil.Process()
    _record(tmp_path, me.pid, me.create_time())
    assert withrun.live_record() == tmp_path / "run.json"
    _record(tmp_path, me.pid, me.create_time() - 1000)  # the pid now belongs to another process
    assert withrun.live_record() is None


def test_with_a_host_or_a_live_run_it_only_runs_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIRANA_DATA_DIR", str(tmp_path))
    calls: list[list[str]] = []
    monkeypatch.setattr(run, "main", lambda argv: calls.append(argv) or 0)
    assert withrun.main(["--host", "https://staging.example.in", "--users", "2"]) == 0
    me = psutil.Process()
    _record(tmp_path, me.pid, me.create_time())
    assert withrun.main(["--users", "2"]) == 0
    assert calls == [["--host", "https://staging.example.in", "--users", "2"], ["--users", "2"]]
