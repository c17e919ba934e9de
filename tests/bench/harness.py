"""Shared benchmark plumbing: load with wrk, servers on loopback, results on disk.

Every benchmark returns `Result`s; `tests/bench/run.py` writes them to bench/results/*.json and
regenerates BENCHMARKS.md. Targets are floors: each result carries the bare limit measured in
the same run where one exists, and the ratio to it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[2]

# Benchmarks and the test suite place many unpaid orders per account; the per-customer caps on
# unpaid orders (kirana.api.orders.unpaid) are tested with their defaults on their own
# (tests/integration/commerce/test_commerce_unpaid_caps.py).
# Off (0), so placement reads nothing for them: with the caps at their defaults a customer's
# cap check reads at most 3 unpaid orders, but lifted to numbers a benchmark never reaches it
# would read each customer's thousands of unpaid orders, a cost no shop with caps has.
UNCAPPED_ORDERS = {
    "KIRANA_ORDER_MAX_UNPAID": "0",
    "KIRANA_ORDER_MAX_UNPAID_UNITS": "0",
    "KIRANA_ORDER_MAX_UNPAID_UNITS_PER_ITEM": "0",
}


def uncap_orders() -> None:
    """Lift the unpaid-order caps for this process and every server it starts (unless set)."""
    for name, value in UNCAPPED_ORDERS.items():
        os.environ.setdefault(name, value)


uncap_orders()


@dataclass
class Result:
    benchmark: str
    metric: str
    value: float
    unit: str
    target: str = ""
    meets_target: bool | None = None
    baseline: float | None = None
    baseline_name: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline:
            return self.value / self.baseline
        return None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ratio": self.ratio}


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text.strip())
    if not m:
        raise ValueError(f"cannot parse latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, *, seconds: int = 10, connections: int = 50, threads: int = 1) -> WrkResult:
    exe = shutil.which("wrk")
    if not exe:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    out = subprocess.run(
        [exe, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    return WrkResult(rps, p50, p99, errors, total)


def wait_http(
    url: str, proc: subprocess.Popen[Any] | None = None, timeout: float = 60, listeners: int = 1
) -> float:
    """Seconds until `url` answers 200 and `listeners` sockets listen on its port (with a socket
    per worker, the last worker may start listening a moment after the first answers)."""
    t0 = time.monotonic()
    port = httpx.URL(url).port
    answered = False
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            answered = answered or httpx.get(url, timeout=1).status_code == 200
        if answered and (listeners <= 1 or _listening(port) >= listeners):
            return time.monotonic() - t0
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready in {timeout}s")


def _listening(port: int | None) -> int:
    return sum(
        1
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    )


def uvicorn_process(
    app_ref: str, port: int, workers: int, env: dict[str, str] | None = None, factory: bool = False
) -> subprocess.Popen[bytes]:
    # uvicorn as `kirana serve` runs it (a socket per worker), with a bare app.
    code = (
        "import uvicorn; from kirana.api import server; "
        f"server.run(uvicorn.Config({app_ref!r}, port={port}, workers={workers}, factory={factory}, "
        "loop='uvloop', http='httptools', access_log=False, log_level='warning'))"
    )
    args = [sys.executable, "-c", code]
    return subprocess.Popen(
        args,
        env=os.environ | (env or {}) | {"PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # `stop` can then reach workers a killed parent left behind
    )


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            if os.getpgid(proc.pid) == proc.pid:  # started as a session: its workers too
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait()


def server_rss_mib(proc: subprocess.Popen[Any]) -> list[float]:
    """RSS of each process that serves requests (the workers, or the process itself)."""
    parent = psutil.Process(proc.pid)
    kids = [
        c
        for c in parent.children(recursive=True)
        if "multiprocessing" not in " ".join(c.cmdline()) or "spawn_main" in " ".join(c.cmdline())
    ]
    serving = [c for c in kids if "resource_tracker" not in " ".join(c.cmdline())] or [parent]
    return [round(p.memory_info().rss / 2**20, 1) for p in serving]


def cached_tool(name: str) -> Path:
    """A load tool or peer server `testbed/tools.sh NAME` builds into ~/.cache/kirana/tools
    (at its pinned version, minutes on the first run, its progress on stderr); its path."""
    out = subprocess.run(
        ["bash", str(REPO / "testbed" / "tools.sh"), name], stdout=subprocess.PIPE, text=True, check=True
    ).stdout
    exe = Path(out.strip().splitlines()[-1])
    if not os.access(exe, os.X_OK):
        raise RuntimeError(f"testbed/tools.sh {name} built nothing runnable at {exe}")
    return exe
