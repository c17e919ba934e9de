"""Graceful shutdown: on SIGTERM, fail readiness first, keep serving, then let uvicorn drain.

Kubernetes removes a pod from its Service only after the readiness probe fails, so an API process
that stopped accepting connections at once would drop requests already routed to it. The handler
installed here marks the app as draining (`/readyz` answers 503), waits `drain_seconds`, and
only then hands the signal to uvicorn, which finishes in-flight requests within its grace period.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType
from typing import Any

from kirana.api import metrics

log = logging.getLogger("kirana.api.shutdown")


def install_drain_handler(state: Any, *, drain_seconds: float) -> None:
    """Wrap the SIGTERM/SIGINT handlers uvicorn installed for the running server."""
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def forward(sig: int, frame: FrameType | None) -> None:
        handler = previous[signal.Signals(sig)]
        if callable(handler):
            handler(sig, frame)
        elif handler == signal.SIG_DFL and sig == signal.SIGINT:
            signal.default_int_handler(sig, frame)

    def begin_draining(sig: int, frame: FrameType | None) -> None:
        metrics.DRAINING.set(1)
        log.info("draining", extra={"signal": signal.Signals(sig).name, "drain_seconds": drain_seconds})
        loop.call_later(drain_seconds, forward, sig, frame)

    def on_signal(sig: int, frame: FrameType | None) -> None:
        # Runs between two bytecodes of whatever the main thread was doing, possibly while it
        # holds a lock (logging's, prometheus-client's): take no lock here, only set a flag and
        # hand the rest to the event loop.
        if getattr(state, "draining", False):
            # A second Ctrl-C means "stop now". A repeated SIGTERM is ignored: it is usually the
            # same shutdown reaching us twice (process-group delivery, then the supervisor).
            if sig == signal.SIGINT:
                loop.call_soon_threadsafe(forward, sig, frame)
            return
        state.draining = True
        loop.call_soon_threadsafe(begin_draining, sig, frame)

    for sig in previous:
        signal.signal(sig, on_signal)
