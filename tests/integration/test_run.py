"""`kirana run`: the whole shop from nothing, stopped by Ctrl-C with nothing left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from kirana.api.devstack import free_port


def _start(data: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIRANA_")}
    env |= {"KIRANA_DATA_DIR": str(data), "KIRANA_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [sys.executable, "-m", "kirana.api", "run", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(base: str, proc: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("kirana run never became ready")


def _processes_using(data: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(data) in cmd:
            found.append(p)
    return found


@pytest.mark.xdist_group("run")
def test_run_starts_everything_and_ctrl_c_leaves_no_orphans(tmp_path: Path) -> None:
    data = tmp_path / "state"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    for attempt in range(2):  # the second start reuses the data
        proc = _start(data, port)
        try:
            _wait_ready(base, proc)
            ready = httpx.get(base + "/readyz").json()
            assert ready["checks"] == {"postgres": "ok", "redis": "ok"}
            assert (data / "postgres" / "pgdata" / "PG_VERSION").exists()
            assert _processes_using(data), "embedded servers should be running"
            children = psutil.Process(proc.pid).children(recursive=True)
            assert len(children) >= 3  # API, worker, Redis (PostgreSQL runs as another user)
        finally:
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, output
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
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    data = tmp_path / "state"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIRANA_")}
    env |= {
        "KIRANA_DATA_DIR": str(data),
        "KIRANA_LOG_LEVEL": "WARNING",
        "KIRANA_DATABASE_URL": database_url,
        "KIRANA_REDIS_URL": redis_url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "kirana.api", "run", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
        assert not (data / "postgres").exists() and not (data / "redis").exists()
        names = {c.name() for c in psutil.Process(proc.pid).children(recursive=True)}
        assert not any("postgres" in n or "redis" in n for n in names)
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "embedded" not in output
