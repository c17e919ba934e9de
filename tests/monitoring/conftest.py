"""Shared helpers of the monitoring tests: where `monitoring/` is, its rules parsed, the pinned tools.

The tools (promtool, amtool, prometheus, alertmanager) come from `make tools` into `.local/bin`;
a missing tool fails the test with that instruction instead of skipping it.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kirana.api.devstack import free_port

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
BIN = REPO / ".local" / "bin"
CATEGORIES = ("api", "database", "cache", "infrastructure", "business", "availability", "external", "backup")


@dataclass(frozen=True)
class Rule:
    file: Path
    group: str
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.body.get("alert") or self.body["record"])


def load_rules() -> list[Rule]:
    rules = []
    for path in sorted(MONITORING.glob("rules/*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [Rule(path, group["name"], r) for r in group["rules"]]
    return rules


def alerts() -> list[Rule]:
    return [r for r in load_rules() if "alert" in r.body]


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make tools`")
    return str(path)


def run(*args: str, cwd: Path = MONITORING, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def rule_test_files() -> list[str]:
    return sorted(glob.glob(str(MONITORING / "tests" / "*_test.yaml")))


@dataclass(frozen=True)
class Shop:
    api: str
    worker: str
    data: Path
    api_port: int
    worker_port: int
    pid: int

    def redis_pid(self) -> int:
        """The embedded Redis server `kirana run` started."""
        import psutil

        for child in psutil.Process(self.pid).children(recursive=True):
            if "redis-server" in child.name():
                return child.pid
        raise AssertionError("kirana run has no redis-server child")


def _wait(url: str, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} never answered 200")


@pytest.fixture(scope="session")
def shop() -> Iterator[Shop]:
    """A real `kirana run` (API, worker, embedded PostgreSQL and Redis); the worker serves /metrics."""
    api_port, worker_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIRANA_")}
    # Under .local like `make run`'s data: the embedded PostgreSQL runs as another user, which
    # cannot enter pytest's private temporary directories under xdist.
    data = REPO / ".local" / "tests" / f"monitoring-shop-{os.getpid()}"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    env |= {
        "KIRANA_DATA_DIR": str(data),
        "KIRANA_LOG_LEVEL": "WARNING",
        "KIRANA_WORKER_METRICS_PORT": str(worker_port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "kirana.api", "run", "--port", str(api_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait(f"http://127.0.0.1:{api_port}/readyz", proc)
        _wait(f"http://127.0.0.1:{worker_port}/metrics", proc)
        yield Shop(
            f"http://127.0.0.1:{api_port}",
            f"http://127.0.0.1:{worker_port}",
            data,
            api_port,
            worker_port,
            proc.pid,
        )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        shutil.rmtree(data, ignore_errors=True)
