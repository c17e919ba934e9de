"""Prometheus metrics of the API process, correct with several worker processes.

When `PROMETHEUS_MULTIPROC_DIR` is set (`kirana serve` sets it before forking workers),
prometheus-client keeps each process's samples in shared files and `/metrics` aggregates them.
`/metrics` is served on `KIRANA_METRICS_PORT`, apart from the API's port (kirana.api.server).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "kirana_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "kirana_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status code.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "kirana_http_requests_in_flight",
    "HTTP requests being served right now.",
    multiprocess_mode="livesum",
)
DB_POOL_CHECKED_OUT = Gauge(
    "kirana_db_pool_connections_in_use",
    "Database connections checked out of the pool.",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "kirana_db_pool_connections_open",
    "Database connections held open by the pool (in use or idle).",
    multiprocess_mode="livesum",
)
DB_POOL_LIMIT = Gauge(
    "kirana_db_pool_connections_max",
    "Most connections the pools may open (pool size plus overflow), summed over processes.",
    multiprocess_mode="livesum",
)
PAGE_CACHE_LOOKUPS = Counter(
    "kirana_page_cache_lookups_total",
    "Public page requests (listing, search, suggest) asked of this process's page cache, by cache "
    "and result: hit (answered from it, or joined a computation in flight), miss (computed), "
    "bypassed (cache off, or changes not followed).",
    ["cache", "result"],
)
PAGE_CACHE_INVALIDATIONS = Counter(
    "kirana_page_cache_invalidations_total",
    "Times a page cache was emptied (a committed change notified, a write on this process, or "
    "following resumed).",
    ["cache"],
)
ORDER_BATCH_SIZE = Histogram(
    "kirana_order_batch_orders",
    "Orders placed per shared transaction (group commit of concurrent POST /v1/orders).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
ORDER_BATCH_FALLBACKS = Counter(
    "kirana_order_batch_fallbacks_total",
    "Order batches whose transaction failed, so that each of their orders was placed alone.",
)
SMS_REQUESTS = Counter(
    "kirana_sms_requests_total",
    "Messages handed to the SMS gateway, by outcome: sent, refused (4xx), failed (5xx or unreachable).",
    ["outcome"],
)
SMS_DURATION = Histogram(
    "kirana_sms_request_duration_seconds",
    "Time the SMS gateway took to answer one attempt.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EMAIL_REQUESTS = Counter(
    "kirana_email_requests_total",
    "Messages handed to the SMTP server, by outcome: sent, refused (5xx), failed (4xx or unreachable).",
    ["outcome"],
)
EMAIL_DURATION = Histogram(
    "kirana_email_request_duration_seconds",
    "Time the SMTP server took for one attempt (connect, TLS, authenticate, send).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DRAINING = Gauge(
    "kirana_draining",
    "1 while the process is draining after SIGTERM.",
    multiprocess_mode="livemax",
)


def prepare_multiprocess_dir(path: Path) -> None:
    """Empty the shared directory before workers start (stale files would add old counts)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def render() -> tuple[bytes, str]:
    """The exposition text for this process, or for all worker processes when multiprocess."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def text() -> str:
    """`render()`'s exposition as text (what a scrape of `/metrics` returns)."""
    return render()[0].decode()
