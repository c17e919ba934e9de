"""The operator's Prometheus metrics: reconcile duration, failures, and releases by phase.

Updated by `kirana.operator.handlers` around each reconcile and served on
KIRANA_OPERATOR_METRICS_PORT (the chart's metrics Service scrapes it).
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kirana.operator.spec import Phase

RECONCILE_SECONDS = Histogram(
    "kirana_operator_reconcile_duration_seconds",
    "Time to observe, plan and act on one ShopRelease.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILE_FAILURES = Counter(
    "kirana_operator_reconcile_failures_total",
    "Reconciles that raised instead of completing, by reason.",
    ["reason"],
)


class _PhaseCollector(Collector):
    """`kirana_operator_releases{phase}`: how many ShopReleases are in each phase right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phases: dict[str, str] = {}

    def set(self, uid: str, phase: str) -> None:
        with self._lock:
            self._phases[uid] = phase

    def forget(self, uid: str) -> None:
        with self._lock:
            self._phases.pop(uid, None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            counts = Tally(self._phases.values())
        family = GaugeMetricFamily("kirana_operator_releases", "ShopReleases by phase.", labels=["phase"])
        for phase in Phase:
            family.add_metric([phase.value], counts.get(phase.value, 0))
        yield family


PHASES = _PhaseCollector()
REGISTRY.register(PHASES)


def serve(port: int, addr: str = "0.0.0.0") -> None:  # scraped from inside the cluster
    if port:
        start_http_server(port, addr=addr)
