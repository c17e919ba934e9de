"""A subscribe whose history read fails (Redis unreachable) leaves nothing behind on the hub: the
socket is closed by the router, and no channel keeps the dead connection for fan-out."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from kirana.api import redis as kirana_redis
from kirana.api.access.principal import Principal
from kirana.api.realtime import broker, channels, hub


async def test_a_failed_subscribe_leaves_no_dead_socket_on_its_channel() -> None:
    me = uuid.uuid4()
    unreachable = kirana_redis.connect("redis://127.0.0.1:1/0", wait_s=0.5)  # nothing listens on 1
    the_hub = hub.Hub(unreachable, None, limits=broker.Limits(), queue_size=8, max_per_user=10)  # type: ignore[arg-type]
    ws: Any = None  # never written to: the failure comes before the first frame
    conn = hub.Connection(
        ws=ws, principal=Principal(user_id=me, permissions=frozenset()), queue=asyncio.Queue()
    )
    channel = channels.user_orders(me)
    try:
        with pytest.raises(RedisConnectionError):
            await the_hub.handle(conn, ("subscribe", channel, None, None))
        assert channel not in the_hub.by_channel
        assert conn.subs == {}
    finally:
        await unreachable.aclose()
