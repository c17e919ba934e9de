"""Gauges the alert rules read that no request path can set: whether PostgreSQL and Redis answer
this worker, how many orders wait for payment (and for how long), and how far behind the outbox
relay is (events no running worker knows wait there too: `outbox.topics`).

`kirana.workers.main.run` starts `probe_loop` beside the relay and the periodic jobs. The probes
run on their own short timeout and never share a failure with the jobs: a PostgreSQL outage sets
`kirana_dependency_up{dependency="postgres"}` to 0 instead of stopping the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from prometheus_client import Gauge

from kirana.api.db.engine import Database
from kirana.api.orders import service as orders
from kirana.api.outbox import service as outbox

log = logging.getLogger("kirana.workers.probes")

PROBE_EVERY_S = 10.0
PROBE_TIMEOUT_S = 3.0

DEPENDENCY_UP = Gauge(
    "kirana_dependency_up",
    "1 when the dependency answered this worker's last probe, 0 when it did not.",
    ["dependency"],
)
PENDING_PAYMENT = Gauge(
    "kirana_orders_pending_payment",
    "Orders placed and waiting for payment (stock reserved), at the last probe.",
)
PENDING_PAYMENT_OLDEST = Gauge(
    "kirana_orders_pending_payment_oldest_age_seconds",
    "Age of the oldest order still waiting for payment (0 when none waits).",
)

OUTBOX_UNPUBLISHED = Gauge(
    "kirana_outbox_unpublished_events",
    "Outbox events committed and not yet relayed to Redis, at the last probe.",
)
OUTBOX_OLDEST = Gauge(
    "kirana_outbox_oldest_unpublished_age_seconds",
    "Age of the oldest outbox event not yet relayed (0 when none waits).",
)


async def _check(name: str, probe: Any) -> bool:
    try:
        await asyncio.wait_for(probe, PROBE_TIMEOUT_S)
    except Exception as exc:
        DEPENDENCY_UP.labels(name).set(0)
        log.warning("dependency probe failed", extra={"dependency": name, "error": type(exc).__name__})
        return False
    DEPENDENCY_UP.labels(name).set(1)
    return True


async def _pending_payment(db: Database) -> None:
    async with db.session() as session:
        count, oldest = await orders.pending_payment_summary(session)
    PENDING_PAYMENT.set(count)
    PENDING_PAYMENT_OLDEST.set(0 if oldest is None else max(0.0, time.time() - oldest.timestamp()))


async def _outbox(db: Database) -> None:
    async with db.session() as session:
        count, oldest = await outbox.backlog(session)
    OUTBOX_UNPUBLISHED.set(count)
    OUTBOX_OLDEST.set(0 if oldest is None else max(0.0, time.time() - oldest.timestamp()))


async def probe_once(db: Database, redis: Any) -> None:
    postgres_ok, _ = await asyncio.gather(_check("postgres", db.ping()), _check("redis", redis.ping()))
    if postgres_ok:
        for probe in (_pending_payment, _outbox):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(probe(db), PROBE_TIMEOUT_S)


async def probe_loop(db: Database, redis: Any, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await probe_once(db, redis)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_EVERY_S)
