"""kopf wiring of the ShopRelease operator: decorators and the per-object loop, nothing else.

Run with `kopf run -m kirana.operator.handlers` (the image's entrypoint, or the e2e tests).
Each ShopRelease gets a daemon that calls `kirana.operator.apply.reconcile` in a worker thread,
then sleeps until the planner's requeue time or until an event on the ShopRelease or one of its
Jobs or Deployments wakes it. Errors map to retries here, in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from kirana.operator import apply, metrics
from kirana.operator.config import ConfigError, OperatorConfig, Runtime
from kirana.operator.kube import Kube
from kirana.operator.plan import resources
from kirana.operator.spec import BACKUP_PLURAL, GROUP, PLURAL, VERSION

MANAGED = {"app.kubernetes.io/managed-by": resources.MANAGED_BY}
ERROR_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
PRIORITY_EPOCH_END = 4_102_444_800  # 2100-01-01 UTC: priorities stay positive until then


def peering_priority(started_at: float, jitter: int) -> int:
    """A replica's kopf priority: the earlier it started, the higher.

    kopf pauses *every* replica that sees a live peer of equal priority, so the replicas of the
    chart's Deployment (same command line) must not share the default 0. Seniority keeps the
    active replica active while a new one joins (a rollout of the operator hands over once, when
    the old replica leaves); the jitter (0..999) separates replicas started in the same ms.
    """
    return int((PRIORITY_EPOCH_END - started_at) * 1000) * 1000 + jitter


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    try:
        config = OperatorConfig.from_env(os.environ)
    except ConfigError as exc:  # one line per bad variable, and the operator stops
        raise kopf.PermanentError(f"bad configuration: {exc}") from exc
    settings.watching.server_timeout = config.watch_server_timeout
    settings.watching.client_timeout = config.watch_server_timeout + 30
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.posting.level = logging.WARNING
    if settings.peering.priority == 0:  # `kopf run --priority N` (or --dev) still wins
        settings.peering.priority = peering_priority(time.time(), random.randrange(1000))
    settings.peering.lifetime = config.peering_lifetime
    settings.persistence.finalizer = "kirana.dev/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kirana.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="kirana.dev")
    # A small, fixed pool: reconciles are short, and every extra thread costs a malloc arena.
    executor = ThreadPoolExecutor(max_workers=config.reconcile_threads, thread_name_prefix="reconcile")
    memo.runtime = Runtime(config=config, kube=Kube.connect(), executor=executor)
    metrics.serve(config.metrics_port)


def _runtime(memo: kopf.Memo) -> Runtime:
    runtime = memo.runtime
    assert isinstance(runtime, Runtime), "configure() has not run"
    return runtime


def _wake(memo: kopf.Memo, uid: str | None) -> None:
    event = _runtime(memo).wakeups.get(uid) if uid else None
    if event is not None:
        event.set()


@kopf.on.event(GROUP, VERSION, PLURAL)
@kopf.on.event(GROUP, VERSION, BACKUP_PLURAL)
async def release_changed(uid: str, memo: kopf.Memo, **_: Any) -> None:
    _wake(memo, uid)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
async def child_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    for ref in body.metadata.get("ownerReferences") or []:
        _wake(memo, ref.get("uid"))


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def release_deleted(name: str, namespace: str | None, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    """Hold the deletion until the optional last backup is done (`spec.backup.onDelete`)."""
    rt = _runtime(memo)
    loop = asyncio.get_running_loop()
    state = await loop.run_in_executor(rt.executor, apply.final_backup, rt.kube, namespace or "", name)
    if not state.done:
        raise kopf.TemporaryError(state.message, delay=5)
    logger.info(state.message)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10)
async def release_loop(
    name: str,
    namespace: str | None,
    uid: str,
    stopped: kopf.DaemonStopped,
    memo: kopf.Memo,
    logger: Any,
    **_: Any,
) -> None:
    await _loop(apply.reconcile, name, namespace, uid, stopped, memo, logger, phases=True)


@kopf.daemon(GROUP, VERSION, BACKUP_PLURAL, cancellation_timeout=10)
async def backup_loop(
    name: str,
    namespace: str | None,
    uid: str,
    stopped: kopf.DaemonStopped,
    memo: kopf.Memo,
    logger: Any,
    **_: Any,
) -> None:
    await _loop(apply.reconcile_backup, name, namespace, uid, stopped, memo, logger, phases=False)


async def _loop(
    reconcile: Callable[[Kube, str, str], apply.Result],
    name: str,
    namespace: str | None,
    uid: str,
    stopped: kopf.DaemonStopped,
    memo: kopf.Memo,
    logger: Any,
    *,
    phases: bool,
) -> None:
    """Reconcile one object until it is gone: after each pass, sleep until its requeue time or a
    wake-up (an event on it or on an object it owns). Errors are counted and retried with backoff."""
    rt = _runtime(memo)
    wake = rt.wakeups.setdefault(uid, asyncio.Event())
    errors = 0
    try:
        while not stopped:
            wake.clear()
            started = time.monotonic()
            try:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(rt.executor, reconcile, rt.kube, namespace or "", name)
            except apply.InvalidSpec as exc:
                metrics.RECONCILE_FAILURES.labels("InvalidSpec").inc()
                logger.error(f"spec does not parse, waiting for a fix: {exc}")
                delay: float | None = 300.0
            except Exception as exc:  # logged, counted and retried with backoff
                metrics.RECONCILE_FAILURES.labels(type(exc).__name__).inc()
                logger.warning(f"reconcile failed, retrying: {exc}")
                delay = ERROR_BACKOFF_S[min(errors, len(ERROR_BACKOFF_S) - 1)]
                errors += 1
            else:
                errors = 0
                delay = result.requeue_after
                if phases and result.phase:
                    metrics.PHASES.set(uid, result.phase)
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
            if delay is None:
                # Finished (a completed ShopBackup) or gone: park until something changes.
                if phases:
                    return
                delay = 3600.0
            deadline = time.monotonic() + delay
            while not stopped and not wake.is_set() and time.monotonic() < deadline:
                timeout = min(1.0, max(0.0, deadline - time.monotonic()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=timeout)
    finally:
        rt.wakeups.pop(uid, None)
        if phases:
            metrics.PHASES.forget(uid)
