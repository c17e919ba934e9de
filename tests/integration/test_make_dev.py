"""`make dev` / `make dev-stop` and the `make db-*` targets, as a developer runs them: the shop in
the background with its run record, the database targets acting on it (no URL set), a clean stop."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from kirana.api.devstack import free_port
from tests.localrun import REPO, clean_env, scratch_dir


def make(target: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), target, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def kirana(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "kirana"), *args], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def gone(pid: int, timeout: float = 10) -> bool:
    """The process has exited (a zombie not yet reaped by its new parent counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.xdist_group("run")
@pytest.mark.timeout(900)  # a first start migrates a fresh database; every target is a process of its own
def test_make_dev_then_the_db_targets_then_make_dev_stop() -> None:
    data = scratch_dir("make-dev") / "state"
    port = free_port()
    # No MAKEFLAGS of an outer `make test`: this is a make of its own, as typed in a terminal.
    env = {
        k: v for k, v in clean_env(KIRANA_DATA_DIR=str(data)).items() if not k.startswith(("MAKE", "MFLAGS"))
    }
    env |= {"KIRANA_SEED_DEMO_DATA": "false", "KIRANA_LOG_LEVEL": "WARNING"}
    pid = None
    try:
        started = make("dev", env, f"PORT={port}")
        assert started.returncode == 0, started.stdout + started.stderr
        record = json.loads((data / "run.json").read_text())
        pid = record["pid"]
        assert record["status"] == "ready" and record["api_url"] == f"http://127.0.0.1:{port}"
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        assert (data / "dev.log").exists()
        again = make("dev", env)
        assert again.returncode == 0 and "already running" in again.stdout
        assert json.loads((data / "run.json").read_text())["pid"] == pid  # not a second shop

        head = kirana(env, "db", "current").strip()
        check = make("db-check", env)  # models and migrations agree; every migration is rolling-safe
        assert check.returncode == 0, check.stdout + check.stderr
        backup = make("db-backup", env)
        assert backup.returncode == 0, backup.stderr
        [archive] = (data / "backups").glob("*.dump")
        verify = make("db-verify", env)  # the newest archive, by default
        assert verify.returncode == 0, verify.stderr
        assert f"kirana db verify {archive}" in verify.stdout

        down = make("db-rollback", env)
        assert down.returncode == 0, down.stderr
        assert kirana(env, "db", "current").strip() != head
        up = make("db-migrate", env)
        assert up.returncode == 0, up.stderr
        assert kirana(env, "db", "current").strip() == head

        restore = make("db-restore", env, f"BACKUP={archive}")
        assert restore.returncode == 0, restore.stdout + restore.stderr
        assert f"kirana db restore {archive}" in restore.stdout
        assert kirana(env, "db", "current").strip() == head
        no_archive = make("db-verify", {**env, "KIRANA_BACKUP_DIR": str(data / "empty")})
        assert no_archive.returncode == 2 and "no archive" in no_archive.stdout
    finally:
        stopped = make("dev-stop", env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"stopped kirana run (pid {pid})" in stopped.stdout
    assert not (data / "run.json").exists(), "a clean stop removes the run record"
    assert pid is not None and gone(pid)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1)
    nothing = make("dev-stop", env)
    assert nothing.returncode == 0 and "no kirana run is running here" in nothing.stdout
    deadline = time.monotonic() + 10
    while any(str(data) in " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])):
        assert time.monotonic() < deadline, "embedded servers left running"
        time.sleep(0.2)
    shutil.rmtree(data.parent, ignore_errors=True)


def test_make_docs_regenerates_the_committed_error_catalogue(tmp_path: Path) -> None:
    out = tmp_path / "errors.md"
    env = {k: v for k, v in clean_env().items() if not k.startswith(("MAKE", "MFLAGS"))}
    made = make("docs", env, f"ERRORS_OUT={out}")  # docs runs docs-errors
    assert made.returncode == 0, made.stdout + made.stderr
    assert out.read_text() == (REPO / "docs" / "errors.md").read_text()
