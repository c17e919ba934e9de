"""What a newcomer does: `make run` in one terminal, `kirana db ...` in a second one with nothing set.

`kirana run` is a real subprocess started in a project directory without KIRANA_DATA_DIR, so it
keeps its data in `<project>/.local` as `make run` does in a checkout. Every other command runs in
its own process with no `KIRANA_*` variable at all and finds the shop through `.local/run.json`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.localrun import kirana, scratch_dir, start_run


def one_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    return lines[0]


def _who_listens(port: int) -> str:
    """The processes listening on `port` (pid and command line), for a failure message."""
    found = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(conn.pid) if conn.pid else None
                found.append(f"pid {conn.pid}: {' '.join(proc.cmdline()) if proc else '?'}")
    return "; ".join(found) or "nobody listens now"


@contextlib.contextmanager
def holding(port: int, wait_s: float = 120) -> Iterator[None]:
    """Keep `port` taken so the embedded PostgreSQL must move elsewhere.

    SO_REUSEADDR lets the bind through while an earlier test's connections to that port sit in
    TIME_WAIT (PostgreSQL's own bind ignores them, so a plain bind failing there would let it in).
    A server still on the port (the previous `kirana run` test's PostgreSQL shutting down, or a
    server of a concurrent test that was given the port as a free one) is waited for: were this
    holder to give up and that server let go of the port afterwards, the new run would get it,
    so a port that stays taken for `wait_s` fails the test naming who holds it."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                s.bind(("127.0.0.1", port))
                s.listen()
                break
            except OSError:
                if time.monotonic() > deadline:
                    who = _who_listens(port)
                    raise AssertionError(f"port {port} stayed taken for {wait_s:.0f}s: {who}") from None
                time.sleep(0.2)
        yield


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


@pytest.fixture
def project() -> Iterator[Path]:
    path = scratch_dir("newcomer")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.xdist_group("run")
def test_second_terminal_finds_the_shop_make_run_started(project: Path) -> None:
    seed = {"KIRANA_SEED_CATALOG_PRODUCTS": "20"}
    with holding(54329):
        run = start_run(cwd=project, env=seed)
        try:
            run.wait_ready()
        except BaseException:
            run.stop()
            raise
    try:
        record = project / ".local" / "run.json"
        state = json.loads(record.read_text())
        assert stat.S_IMODE(record.stat().st_mode) == 0o600
        assert state["pid"] == run.pid and state["status"] == "ready"
        assert ":54329/" not in state["database_url"], "54329 was taken: PostgreSQL moved"
        assert state["redis_url"].startswith("redis://127.0.0.1:")
        assert state["api_url"] == run.base
        assert state["razorpay_base_url"].startswith("http://127.0.0.1:")

        current = kirana("db", "current", "--json", cwd=project)
        assert current.returncode == 0, current.stderr
        assert json.loads(current.stdout)["up_to_date"] is True

        audit = kirana("audit", "verify", cwd=project)
        assert audit.returncode == 0, audit.stderr
        assert "audit log intact" in audit.stdout

        backup = kirana("db", "backup", "--json", cwd=project)
        assert backup.returncode == 0, backup.stderr
        archive = Path(json.loads(backup.stdout)["path"])
        assert archive.is_relative_to(project / ".local" / "backups") and archive.stat().st_size > 0
        verify = kirana("db", "verify", str(archive), cwd=project)
        assert verify.returncode == 0, verify.stderr
        assert "OK" in verify.stdout

        # from a subdirectory too, and --verbose says where the URL came from
        sub = project / "docs" / "notes"
        sub.mkdir(parents=True)
        verbose = kirana("db", "current", "--verbose", cwd=sub)
        assert verbose.returncode == 0, verbose.stderr
        assert f"from the running `kirana run`, pid {run.pid}, {record}" in verbose.stderr
        status = kirana("status", cwd=sub)
        assert status.returncode == 0 and run.base in status.stdout, status.stderr

        # an explicit URL wins over the record
        explicit = kirana(
            "-v", "db", "current", cwd=project, env={"KIRANA_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"}
        )
        assert explicit.returncode == 1
        assert "from KIRANA_DATABASE_URL in the environment" in explicit.stderr

        # a second run on the same data is refused (exit 1) and the first keeps serving
        second = start_run(cwd=project)
        assert "already running" in second.wait() and second.proc.returncode == 1
        assert kirana("db", "current", cwd=project).returncode == 0
    except BaseException:
        run.stop()
        raise

    # killed (no clean stop): the record stays but is stale, and says so in one line, exit 2
    left = _descendants(run.pid)  # API, worker, PostgreSQL, Redis: orphans once run is killed
    run.proc.kill()
    run.proc.wait(30)  # not communicate(): the orphans still hold its output pipe
    assert record.exists()
    stale = kirana("db", "backup", cwd=project)
    assert stale.returncode == 2
    assert "no longer running" in one_line(stale.stderr) and str(run.pid) in stale.stderr

    # the next run replaces the stale record, stopping what the killed one left behind
    again = start_run(cwd=project, env=seed)
    try:
        again.wait_ready()
        assert json.loads(record.read_text())["pid"] == again.pid
        assert not [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert kirana("db", "current", cwd=project).returncode == 0
    finally:
        output = again.stop()
    assert again.proc.returncode == 0, output
    assert not record.exists(), "a clean stop removes the record"
    gone = kirana("db", "current", cwd=project)
    assert gone.returncode == 2
    assert "no `kirana run` is running" in one_line(gone.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ("db", "current"),
        ("audit", "verify"),
        ("db", "backup"),
        ("accounts", "create-owner", "--email", "a@example.com"),
        ("payments", "verify-ledger"),
        ("serve",),
        ("leaderboards", "check"),
        ("db", "backup", "--bogus"),
        ("db", "rollback", "--steps", "many"),
        ("db", "verify"),
        ("no-such-command",),
        ("completion", "tcsh"),
    ],
)
def test_bad_usage_and_no_shop_exit_2_with_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    result = kirana(*args, cwd=tmp_path, env={"KIRANA_DATA_DIR": str(tmp_path / ".local")})
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_line(result.stderr)
    assert line.startswith("error: ") and "Traceback" not in result.stderr


def test_a_stale_record_is_named_in_one_line(tmp_path: Path) -> None:
    dead = psutil.Popen(["true"])
    dead.wait()
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "run.json").write_text(
        json.dumps(
            {
                "pid": dead.pid,
                "started": 1.0,
                "status": "ready",
                "database_url": "postgresql://postgres@127.0.0.1:1/kirana",
            }
        )
    )
    result = kirana("audit", "verify", cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "no longer running (stale record)" in line and f"pid {dead.pid}" in line


def test_a_taken_api_port_is_refused_before_anything_starts(project: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        run = start_run(cwd=project, port=port)
        output = run.wait()
    assert run.proc.returncode == 1
    assert f"error: port {port} on 127.0.0.1 is taken; stop what uses it or pass --port" in output
    assert "PostgreSQL" not in output
    assert not (project / ".local" / "run.json").exists()
