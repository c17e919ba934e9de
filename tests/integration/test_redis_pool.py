"""The process's Redis client waits for a free connection instead of failing a burst: more
commands in flight at once than the pool holds all succeed, on at most the pool's connections."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from kirana.api import redis as kirana_redis


async def test_a_burst_beyond_the_pool_waits_for_connections(redis_url: str) -> None:
    client = kirana_redis.connect(redis_url, max_connections=4)
    observer = kirana_redis.connect(redis_url)
    try:
        before = len(await observer.client_list())
        # 300 at once: redis-py's default pool would need 300 connections (and refuses past 100).
        answers = await asyncio.gather(*(client.incr("burst") for _ in range(300)))
        assert sorted(answers) == list(range(1, 301))
        assert 1 <= len(await observer.client_list()) - before <= 4  # the pool's, kept open
    finally:
        await client.aclose()
        await observer.aclose()


async def test_a_pool_held_too_long_fails_after_the_wait(redis_url: str) -> None:
    client = kirana_redis.connect(redis_url, max_connections=1, wait_s=0.3)
    blocker = kirana_redis.connect(redis_url)
    try:
        held = asyncio.create_task(client.blpop(["never"], timeout=2))  # holds the only connection
        await asyncio.sleep(0.1)
        with pytest.raises(RedisConnectionError):
            await client.ping()
        await blocker.rpush("never", "x")
        assert await held == (b"never", b"x")
    finally:
        await client.aclose()
        await blocker.aclose()
