"""Run uvicorn for `kirana serve`: worker processes, shared metrics, graceful shutdown.

This module must not import the app or `kirana.api.metrics` before the Prometheus multiprocess
directory is set, or the metrics of this process would not be shared with /metrics.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from types import FrameType

import uvicorn

from kirana.api import logging as kirana_logging
from kirana.api.settings import Settings


def prepare_metrics_dir(settings: Settings) -> Path:
    path = Path(
        os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.data_dir / "metrics" / str(os.getpid())
    )
    if path.exists():
        shutil.rmtree(path)  # stale files from an earlier run would add old counts
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path.resolve())
    return path


APP_FACTORY = "kirana.api.asgi:factory"


def _exit_cleanly(_sig: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    app_factory: str = APP_FACTORY,
) -> None:
    kirana_logging.configure(settings.log_level, json=settings.log_json)
    metrics_dir = prepare_metrics_dir(settings)
    # uvicorn re-raises the shutdown signal once it has drained; exit cleanly (status 0) then.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    try:
        uvicorn.run(
            app_factory,
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers or settings.workers,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            log_config=None,
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            server_header=False,
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
            timeout_keep_alive=30,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
