"""Starts and stops the process's hub with the app, and turns SIGTERM's drain into 1012 closes.

`create_app`'s lifespan makes one `RealtimeRuntime`; it puts the hub at `app.state.realtime`
and watches `app.state.draining` (set by `shutdown.install_drain_handler`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from kirana.api.realtime import broker
from kirana.api.realtime.hub import Authorizer, Hub
from kirana.api.settings import Settings


def limits_from(settings: Settings) -> broker.Limits:
    return broker.Limits(
        history_size=settings.realtime_history_size, history_ttl_s=settings.realtime_history_ttl_s
    )


class RealtimeRuntime:
    def __init__(
        self, settings: Settings, state: Any, *, authorizers: Mapping[str, Authorizer] | None = None
    ) -> None:
        self.settings = settings
        self.state = state
        self.hub = Hub(
            state.redis,
            state.access,
            limits=limits_from(settings),
            queue_size=settings.ws_send_queue,
            max_per_user=settings.ws_max_per_user,
            authorizers=authorizers,
        )
        state.realtime = self.hub
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.hub.start()
        self._watch = asyncio.create_task(self._watch_drain(), name="realtime-drain")

    async def _watch_drain(self) -> None:
        while not getattr(self.state, "draining", False):
            await asyncio.sleep(0.1)
        await self.hub.drain(self.settings.drain_seconds)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.hub.stop()
