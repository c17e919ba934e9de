"""The process's Redis client (redis-py asyncio), built from settings.

A blocking pool: past `max_connections` commands in flight at once, the next one waits (up to
`wait_s`) for a connection to come back, instead of failing. redis-py's default pool caps at
100 connections and raises `MaxConnectionsError` at the 101st, which a burst of requests or
of sockets subscribing at once reaches on a single API process.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

DEFAULT_MAX_CONNECTIONS = 200
DEFAULT_WAIT_S = 5.0


def connect(
    url: str,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    wait_s: float = DEFAULT_WAIT_S,
    client_name: str | None = None,
) -> Redis:
    """`client_name` names every connection in Redis's CLIENT LIST (`kirana run` finds its
    worker by it)."""
    pool = BlockingConnectionPool.from_url(
        url,
        client_name=client_name,
        max_connections=max_connections,
        timeout=wait_s,
        decode_responses=False,
        health_check_interval=30,
        socket_timeout=5,
    )
    return Redis.from_pool(pool)


def worker_client_name(pid: int) -> str:
    """What a worker process's Redis connections are called in CLIENT LIST (`kirana run` waits
    for its worker's to show)."""
    return f"kirana-worker-{pid}"
