"""`kirana run` as a real subprocess, the way a developer starts it, for any test that needs one.

Used by tests/integration (the run itself, the second terminal, `dev pay`), tests/monitoring
(a whole shop that Prometheus scrapes) and the `make run` benchmark. The environment holds no
`KIRANA_*` variable from the caller, only what the test passes. Data lives under the repository's
`.local/tests/` by default: the embedded PostgreSQL runs as its own user when tests run as root,
and that user cannot enter pytest's private temporary directories.

The run's output (its own and, inherited, its API's and worker's logs) is read continuously by a
thread: a pipe nobody reads holds 64 KiB, and once it is full every process writing a log line
blocks in `write()`, so a burst of logged errors (a few 500s with their tracebacks) would stop
the whole shop until the test read the output at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kirana.api.devstack import free_port

REPO = Path(__file__).resolve().parents[1]


def clean_env(**variables: str) -> dict[str, str]:
    """This process's environment without any `KIRANA_*` variable, plus `variables`."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KIRANA_")} | variables


def scratch_dir(name: str) -> Path:
    """A fresh directory under `.local/tests/` (see the module docstring for why not tmp_path)."""
    path = REPO / ".local" / "tests" / f"{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


def wait_http(url: str, proc: subprocess.Popen[str], timeout: float = 300) -> None:
    """Until `url` answers 200 (a first start seeds data: minutes on a busy machine); fails if
    the process exits first (`running` adds its output to the failure)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode} before {url} answered"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered 200")


@dataclass
class Run:
    """One `kirana run` process: where it keeps its data and how to reach its API."""

    proc: subprocess.Popen[str]
    port: int
    data: Path
    cwd: Path
    output: str = field(default="", init=False)
    _lines: list[str] = field(default_factory=list, init=False, repr=False)
    _reader: threading.Thread | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.proc.stdout is not None:
            self._reader = threading.Thread(target=self._drain, name=f"kirana-run-{self.pid}", daemon=True)
            self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.append(line)

    def _collected(self) -> str:
        """Everything it printed, once it exited (the reader has seen the end of the pipe)."""
        if self._reader is not None:
            self._reader.join(timeout=5)  # orphans of a killed run may hold the pipe open
        self.output = "".join(self._lines)
        return self.output

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def state_path(self) -> Path:
        return self.data / "run.json"

    def state(self) -> dict[str, Any]:
        """The run record `kirana run` keeps for other commands."""
        data: dict[str, Any] = json.loads(self.state_path.read_text())
        return data

    def server_logs(self, lines: int = 40) -> str:
        """The last lines PostgreSQL and Redis logged for this run (a server restart, a killed
        backend or a refused connection shows there, not in the API's log)."""
        parts = []
        for log in (self.data / "postgres" / "postgres.log", self.data / "redis" / "redis.log"):
            with suppress(OSError):
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"{log.relative_to(self.data)} (last {lines} lines):\n" + "\n".join(tail))
        return "\n".join(parts) or "(no server log found)"

    def wait_ready(self, timeout: float = 300) -> Run:
        """Until the API answers /readyz and `kirana run` has marked its record ready (a moment
        later: it polls /readyz itself, then writes the record)."""
        deadline = time.monotonic() + timeout
        wait_http(self.base + "/readyz", self.proc, timeout)
        while time.monotonic() < deadline and self.proc.poll() is None:
            with suppress(OSError, ValueError):
                if self.state()["status"] == "ready":
                    return self
            time.sleep(0.1)
        raise AssertionError(f"`kirana run` did not mark its record ready: {self.state_path}")

    def wait(self, timeout: float = 60) -> str:
        """Until it exits by itself; its whole output."""
        self.proc.wait(timeout=timeout)
        return self._collected()

    def stop(self, timeout: float = 60) -> str:
        """Ctrl-C, as a developer stops it; its whole output."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=timeout)
        return self._collected()


def start_run(
    data: Path | None = None,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    args: Sequence[str] = (),
) -> Run:
    """Start `kirana run --port PORT` with output captured; `data=None` leaves KIRANA_DATA_DIR
    unset so the run uses `<cwd>/.local`, exactly as `make run` in a checkout does."""
    port = port or free_port()
    full_env = clean_env(KIRANA_LOG_LEVEL="WARNING") | (env or {})
    if data is not None:
        full_env["KIRANA_DATA_DIR"] = str(data)
    workdir = cwd or REPO
    proc = subprocess.Popen(
        [sys.executable, "-m", "kirana.api", "run", "--port", str(port), *args],
        env=full_env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",  # one odd byte must not stop the reader (the pipe would fill again)
    )
    return Run(proc, port, (data or workdir / ".local").resolve(), workdir)


@contextmanager
def running(data: Path | None = None, *, cleanup: Path | None = None, **kwargs: Any) -> Iterator[Run]:
    """A ready `kirana run`, stopped with Ctrl-C afterwards; `cleanup` is removed at the end."""
    run = start_run(data, **kwargs)
    try:
        yield run.wait_ready()
    except BaseException as exc:
        # What the run's API and worker logged (WARNING and up) is what tells why a test failed.
        exc.add_note(f"`kirana run` output (last 8000 characters):\n{run.stop()[-8000:]}")
        exc.add_note(run.server_logs())
        raise
    finally:
        run.stop()
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)


def kirana(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """One `kirana` command as a second terminal runs it: no `KIRANA_*` variable unless given."""
    return subprocess.run(
        [sys.executable, "-m", "kirana.api", *args],
        cwd=cwd,
        env=clean_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
