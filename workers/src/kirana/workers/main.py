"""The worker process: runs the outbox relay, the event consumers and periodic jobs until SIGTERM.

Started by `kirana run` beside the API and by the chart's workers Deployment. Periodic jobs are
defined in each domain's `scheduled` module and registered in `JOBS` (e.g. releasing expired
stock reservations, `orders.scheduled`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, start_http_server

from kirana.api import logging as kirana_logging
from kirana.api import redis as kirana_redis
from kirana.api.accounts import signups
from kirana.api.db.engine import Database
from kirana.api.db.urls import libpq_url
from kirana.api.delivery import scheduled as delivery_jobs
from kirana.api.idempotency import scheduled as idempotency_jobs
from kirana.api.loyalty import scheduled as loyalty_jobs
from kirana.api.notify import providers
from kirana.api.orders import scheduled as order_jobs
from kirana.api.payments import gateway as payments_gateway
from kirana.api.payments import scheduled as payment_jobs
from kirana.api.realtime import broker
from kirana.api.search import scheduled as search_jobs
from kirana.api.settings import Settings, SettingsError, load_settings
from kirana.api.sync import scheduled as sync_jobs
from kirana.workers import consumers, probes, relay
from kirana.workers.wakeup import OutboxWakeup

log = logging.getLogger("kirana.workers")

RELAYED = Counter("kirana_outbox_events_relayed_total", "Outbox events published to Redis.")
CONSUMED = Counter("kirana_worker_events_handled_total", "Outbox events handled by a worker consumer.")
JOB_RUNS = Counter(
    "kirana_worker_job_runs_total", "Periodic job runs, by job and outcome.", ["job", "outcome"]
)
LAST_SUCCESS = Gauge("kirana_worker_job_last_success_timestamp_seconds", "Last successful run.", ["job"])


@dataclass(frozen=True)
class Job:
    name: str
    every_s: float
    run: Callable[[Database], Awaitable[int]]


JOBS: list[Job] = [
    Job("orders.expire_reservations", 15.0, order_jobs.expire_reservations),
    Job("sync.stamp_changes", 1.0, sync_jobs.stamp_changes),
    Job("sync.compact_changes", 600.0, sync_jobs.compact_changes),
    Job("idempotency.purge_expired", 900.0, idempotency_jobs.purge_expired_keys),
    Job("search.rebuild_terms", 300.0, search_jobs.rebuild_terms),
    Job("accounts.prune_signups", 900.0, signups.prune),
]


async def _relay_loop(
    db: Database,
    redis: object,
    stop: asyncio.Event,
    history: broker.Limits,
    wake: OutboxWakeup,
    poll_s: float,
) -> None:
    """Relay until `stop`: batch after batch while there are events, then sleep until a commit
    is notified (`wake`) or `poll_s` passes (the fallback when notifications are lost)."""
    from redis.asyncio import Redis

    assert isinstance(redis, Redis)
    while not stop.is_set():
        wake.wake.clear()  # before claiming: a commit notified from here on wakes the next wait
        try:
            sent = await relay.relay_once(db, redis, history=history)
            RELAYED.inc(sent)
            if sent:
                continue
            await wake.wait(poll_s, stop)
        except Exception:
            log.exception("outbox relay failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


async def _consumer_loop(deps: consumers.Deps, stop: asyncio.Event) -> None:
    name = f"{socket.gethostname()}-{os.getpid()}"
    while not stop.is_set():
        try:
            CONSUMED.inc(await consumers.consume_once(deps, consumer=name, block_ms=1000))
        except Exception:
            log.exception("event consumer failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


async def _job_loop(job: Job, db: Database, stop: asyncio.Event) -> None:
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            await job.run(db)
            JOB_RUNS.labels(job.name, "ok").inc()
            LAST_SUCCESS.labels(job.name).set_to_current_time()
        except Exception:
            JOB_RUNS.labels(job.name, "error").inc()
            log.exception("job failed", extra={"job": job.name})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, job.every_s - (time.monotonic() - t0)))


async def run(settings: Settings, *, metrics_port: int | None = None) -> None:
    db = Database(settings.database_url, pool_size=5, max_overflow=5, application_name="kirana-worker")
    redis = kirana_redis.connect(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        wait_s=settings.redis_pool_wait_s,
        client_name=kirana_redis.worker_client_name(os.getpid()),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if metrics_port:
        start_http_server(metrics_port, addr="0.0.0.0")  # all interfaces: scraped inside the cluster
    log.info("worker started", extra={"jobs": [j.name for j in JOBS] + ["payments.*"]})
    gateway = payments_gateway.Gateway(payments_gateway.config_from(settings))
    jobs = JOBS + [Job(name, every, run) for name, every, run in payment_jobs.jobs(lambda: gateway)]
    jobs += [Job(name, every, run) for name, every, run in loyalty_jobs.jobs(settings.loyalty)]
    retention = settings.delivery_position_retention_s
    jobs.append(
        Job(
            "delivery.prune_positions",
            60.0,
            lambda db: delivery_jobs.prune_positions(db, retention_s=retention),
        )
    )
    notifier = providers.build(settings)
    deps = consumers.Deps(db=db, redis=redis, notifier=notifier, settings=settings)
    # The relay appends to each channel's history, so it is what KIRANA_REALTIME_HISTORY_* bound.
    history = broker.Limits(
        history_size=settings.realtime_history_size, history_ttl_s=settings.realtime_history_ttl_s
    )
    wakeup = OutboxWakeup(libpq_url(settings.database_url))
    await wakeup.start()
    relay_task = _relay_loop(db, redis, stop, history, wakeup, settings.outbox_poll_s)
    tasks = [asyncio.create_task(relay_task)]
    tasks.append(asyncio.create_task(_consumer_loop(deps, stop)))
    tasks.append(asyncio.create_task(probes.probe_loop(db, redis, stop)))
    tasks += [asyncio.create_task(_job_loop(j, db, stop)) for j in jobs]
    try:
        await stop.wait()
        log.info("worker stopping")
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await wakeup.stop()
        await notifier.aclose()
        await redis.aclose()
        await db.dispose()
        log.info("worker stopped")


def main() -> None:
    import sys

    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None
    if not settings.database_url or not settings.redis_url:
        sys.stderr.write("error: KIRANA_DATABASE_URL and KIRANA_REDIS_URL must be set\n")
        raise SystemExit(2)
    if problem := settings.payments_problem():
        sys.stderr.write(f"error: {problem}\n")
        raise SystemExit(2)
    kirana_logging.configure(settings.log_level, json=settings.log_json)
    port = int(os.environ.get("KIRANA_WORKER_METRICS_PORT", "0"))
    asyncio.run(run(settings, metrics_port=port or None))
