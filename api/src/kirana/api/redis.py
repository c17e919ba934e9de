"""The process's Redis client (redis-py asyncio), built from settings."""

from __future__ import annotations

from redis.asyncio import Redis


def connect(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=False, health_check_interval=30, socket_timeout=5)
