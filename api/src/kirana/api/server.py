"""Run uvicorn for `kirana serve`: worker processes, shared metrics, graceful shutdown.

This module must not import the app or `kirana.api.metrics` before the Prometheus multiprocess
directory is set, or the metrics of this process would not be shared with /metrics.

With several workers, each one listens on a socket of its own, all bound to the same address
with `SO_REUSEPORT`, and the kernel spreads new connections across them by a hash of the
connection. With one shared socket, as uvicorn does by default, the first worker to wake up
accepts every pending connection at once (uvloop drains the queue): a burst of 50 keep-alive
connections was split anywhere from 25/25 to 44/6 between two workers, and the crowded worker
set the latency tail while the other idled. uvicorn's supervisor (restarts, health checks,
signals) is kept: it hands each worker the parent's socket by pickling it, and our socket
(`_PerWorkerListener`) unpickles in each worker as a new socket on the same address.

Two consequences of SO_REUSEPORT, handled or accepted:
- any socket of the same user with SO_REUSEPORT may join the address, so a second server, or
  workers orphaned by a killed parent, would silently take a share of the traffic. Before
  binding, the parent checks that nothing else holds the address and refuses to start if so;
- connections the kernel queued on one worker's socket and that it had not accepted yet are
  reset when that worker exits (crash, SIGHUP reload, SIGTTOU), where with a shared socket
  another worker would take them. On Linux 5.14+ `net.ipv4.tcp_migrate_req=1` moves them to a
  sibling instead. At shutdown readiness fails first, so no new traffic arrives by then.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

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


def serve_metrics(host: str, port: int) -> Any:
    """`/metrics` on a port of its own, from this (the supervising) process: the samples of every
    worker process, read from the multiprocess directory. Returns the HTTP server (daemon thread).

    Apart from the API's port, so that the Service and the ingress in front of it never route to
    it; Prometheus scrapes the pods' `metrics` port (charts/kirana's PodMonitor)."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.error("cannot serve metrics on %s:%s: %s", host, port, exc)
        raise SystemExit(STARTUP_FAILURE) from exc
    return server


log = logging.getLogger("kirana.api.server")


def _bind_reuse_port(sock: socket.socket, address: tuple[Any, ...]) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)


def _bind(family: socket.AddressFamily, address: tuple[Any, ...]) -> socket.socket:
    """A worker's own socket on the parent's address (runs while the worker unpickles its
    arguments); a failure stops the server rather than restarting the worker forever."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        _bind_reuse_port(sock, address)
    except OSError as exc:
        sock.close()
        log.error("worker cannot listen on %s: %s", address, exc)
        raise SystemExit(STARTUP_FAILURE) from exc
    sock.set_inheritable(True)
    return sock


class _PerWorkerListener(socket.socket):
    """The parent's socket: bound with SO_REUSEPORT (so the address is taken, and a clash is
    reported before any worker starts) but never listening. Pickled for a worker, it becomes a
    new socket bound to the same address, which that worker alone listens on."""

    def __reduce__(self) -> tuple[Any, ...]:
        return _bind, (self.family, self.getsockname())


def _per_worker_listener(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if port:
        # Without SO_REUSEPORT this bind fails if anything holds the address, even a server
        # listening with SO_REUSEPORT, which our own bind below would silently join.
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    sock = _PerWorkerListener(family, socket.SOCK_STREAM)
    _bind_reuse_port(sock, (host, port))
    return sock


def _exit_cleanly(_sig: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    metrics_port: int | None = None,
    app_factory: str = APP_FACTORY,
) -> None:
    kirana_logging.configure(settings.log_level, json=settings.log_json)
    metrics_dir = prepare_metrics_dir(settings)
    metrics_port = settings.metrics_port if metrics_port is None else metrics_port
    metrics_server = serve_metrics(host or settings.host, metrics_port) if metrics_port else None
    # uvicorn re-raises the shutdown signal once it has drained; exit cleanly (status 0) then.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    config = uvicorn.Config(
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
        # WebSockets (docs/realtime.md): the sans-I/O implementation (no task per socket),
        # protocol pings so a dead peer is dropped within two intervals, small frames, and no
        # per-message deflate (its zlib state costs about 300 KiB per socket).
        ws="websockets-sansio",
        ws_max_size=settings.ws_max_frame_bytes,
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_interval_s,
        ws_per_message_deflate=settings.ws_per_message_deflate,
    )
    try:
        run(config)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def run(config: uvicorn.Config) -> None:
    """Serve `config` (an import string when `config.workers` > 1), each worker on its own
    socket. The benchmarks' bare baselines run through here too, so both sides of a ratio
    spread connections the same way."""
    if config.workers > 1:
        try:
            sock = _per_worker_listener(config.host, config.port)
        except OSError as exc:
            log.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
            raise SystemExit(STARTUP_FAILURE) from exc
        name = sock.getsockname()
        log.info("listening on %s:%s with %d workers", name[0], name[1], config.workers)
        Multiprocess(config, sockets=[sock]).run()
    else:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            raise SystemExit(STARTUP_FAILURE)
