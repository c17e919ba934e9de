"""The API's memory during a load run: the resident set of the `kirana run` API process and its
descendants (uvicorn's workers), sampled while Locust runs, for the soak shape's question "does
it grow?".

`Sampler` writes `<out>/memory.csv` (`t_s`, `rss_mb`, `processes`); `summary` is pure (start,
end, peak, growth and growth per hour), so the unit tests check it without processes. The pid
comes from the run record's `children["api"]` (with its create time, so a reused pid is not
measured).
"""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path
from typing import Any

import psutil


def api_process(record: dict[str, Any]) -> psutil.Process | None:
    """The run's API process, if it is still the one the record names."""
    pid, started = (record.get("children") or {}).get("api", (0, 0.0))
    try:
        proc = psutil.Process(int(pid))
        if started and abs(proc.create_time() - float(started)) > 1:
            return None
    except (psutil.Error, ValueError):
        return None
    return proc


def rss_mb(root: psutil.Process) -> tuple[float, int]:
    """The resident set of `root` and its descendants, MB, and how many processes that is."""
    total, count = 0, 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
            count += 1
        except psutil.Error:
            continue
    return total / 2**20, count


class Sampler:
    """A thread that appends a sample every `every_s` seconds until `stop()`."""

    def __init__(self, root: psutil.Process, path: Path, every_s: float = 5.0) -> None:
        self.root, self.path, self.every_s = root, path, every_s
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> Sampler:
        self.thread.start()
        return self

    def _run(self) -> None:
        t0 = time.monotonic()
        with self.path.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["t_s", "rss_mb", "processes"])
            while True:
                mb, n = rss_mb(self.root)
                out.writerow([f"{time.monotonic() - t0:.1f}", f"{mb:.1f}", n])
                f.flush()
                if self.done.wait(self.every_s):
                    return

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=10)


def read(path: Path) -> list[tuple[float, float]]:
    with path.open(newline="") as f:
        return [(float(r["t_s"]), float(r["rss_mb"])) for r in csv.DictReader(f) if float(r["rss_mb"]) > 0]


def summary(samples: list[tuple[float, float]]) -> dict[str, float] | None:
    """Start, end and peak RSS (MB), the growth from start to end and that growth per hour.

    Start is the median of the first tenth of the samples and end that of the last tenth, so a
    single spike at either edge does not pass for growth."""
    if len(samples) < 2:
        return None

    def median(values: list[float]) -> float:
        values = sorted(values)
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    edge = max(1, len(samples) // 10)
    start = median([mb for _, mb in samples[:edge]])
    end = median([mb for _, mb in samples[-edge:]])
    span_h = (samples[-1][0] - samples[0][0]) / 3600
    growth = end - start
    return {
        "start_mb": round(start, 1),
        "end_mb": round(end, 1),
        "peak_mb": round(max(mb for _, mb in samples), 1),
        "growth_mb": round(growth, 1),
        "growth_mb_per_hour": round(growth / span_h, 1) if span_h > 0 else 0.0,
    }
