"""Shared helpers of the monitoring tests: where `monitoring/` is, its rules parsed, the pinned tools.

The tools (promtool, amtool, prometheus, alertmanager) come from `make tools` into `.local/bin`;
a missing tool fails the test with that instruction instead of skipping it.
"""

from __future__ import annotations

import contextlib
import glob
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kirana.api.devstack import free_port
from tests.localrun import running, scratch_dir, wait_http

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
    api_metrics_port: int = 0

    @property
    def api_metrics(self) -> str:
        """The API's /metrics base URL (its own port, not the API's)."""
        return f"http://127.0.0.1:{self.api_metrics_port}"

    def redis_pid(self) -> int:
        """The embedded Redis server `kirana run` started."""
        import psutil

        for child in psutil.Process(self.pid).children(recursive=True):
            if "redis-server" in child.name():
                return child.pid
        raise AssertionError("kirana run has no redis-server child")


@contextlib.contextmanager
def start_shop(name: str = "monitoring") -> Iterator[Shop]:
    """A real `kirana run` (API, worker, embedded PostgreSQL and Redis); the API and the worker
    serve /metrics, each on a port of its own. Stopped (and its data removed) on exit."""
    worker_port, api_metrics_port = free_port(), free_port()
    data = scratch_dir(f"{name}-shop")
    env = {"KIRANA_WORKER_METRICS_PORT": str(worker_port), "KIRANA_METRICS_PORT": str(api_metrics_port)}
    with running(data, cleanup=data, env=env) as run:
        wait_http(f"http://127.0.0.1:{worker_port}/metrics", run.proc)
        wait_http(f"http://127.0.0.1:{api_metrics_port}/metrics", run.proc)
        worker = f"http://127.0.0.1:{worker_port}"
        yield Shop(run.base, worker, data, run.port, worker_port, run.pid, api_metrics_port)


@pytest.fixture(scope="session")
def shop() -> Iterator[Shop]:
    """A real `kirana run` for the session (see `start_shop`)."""
    with start_shop() as running_shop:
        yield running_shop
