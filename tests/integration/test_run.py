"""`kirana run`: the whole shop from nothing, stopped by Ctrl-C with nothing left running."""

from __future__ import annotations

import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from kirana.api.devstack import free_port
from tests.localrun import running, scratch_dir, start_run


@pytest.fixture
def data() -> Iterator[Path]:
    path = scratch_dir("run")
    yield path / "state"
    shutil.rmtree(path, ignore_errors=True)


def _processes_using(data: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(data) in cmd:
            found.append(p)
    return found


@pytest.mark.xdist_group("run")
def test_run_starts_everything_and_ctrl_c_leaves_no_orphans(data: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    for attempt in range(2):  # the second start reuses the data
        run = start_run(data, port=port)
        try:
            run.wait_ready()
            ready = httpx.get(base + "/readyz").json()
            assert ready["checks"] == {"postgres": "ok", "redis": "ok"}
            assert (data / "postgres" / "pgdata" / "PG_VERSION").exists()
            assert _processes_using(data), "embedded servers should be running"
            children = psutil.Process(run.pid).children(recursive=True)
            assert len(children) >= 3  # API, worker, Redis (PostgreSQL runs as another user)
            state = run.state()
            assert stat.S_IMODE(run.state_path.stat().st_mode) == 0o600
            assert state["pid"] == run.pid and state["status"] == "ready"
            assert state["api_url"] == base and state["database"] == state["redis"] == "embedded"
            assert set(state["children"]) == {"postgres", "redis", "api", "worker"}
        finally:
            output = run.stop()
        assert run.proc.returncode == 0, output
        assert not run.state_path.exists(), "a clean stop removes the run record"
        assert "Kirana is ready" in output
        if attempt == 1:
            assert "applied" not in output  # schema already at head: nothing re-migrated
        deadline = time.monotonic() + 10
        while _processes_using(data) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_using(data) == []
        assert [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []
        with pytest.raises(httpx.HTTPError):
            httpx.get(base + "/livez", timeout=1)


@pytest.mark.xdist_group("run")
def test_run_uses_configured_servers_and_starts_nothing_embedded(
    data: Path, database_url: str, redis_url: str
) -> None:
    env = {"KIRANA_DATABASE_URL": database_url, "KIRANA_REDIS_URL": redis_url}
    with running(data, env=env) as run:
        assert not (data / "postgres").exists() and not (data / "redis").exists()
        names = {c.name() for c in psutil.Process(run.pid).children(recursive=True)}
        assert not any("postgres" in n or "redis" in n for n in names)
        state = run.state()
        assert state["database"] == state["redis"] == "configured"
        assert state["database_url"] == database_url
    assert run.proc.returncode == 0, run.output
    assert "embedded" not in run.output
