"""Connection tickets: short-lived, single-use proofs of a signed-in session for `GET /v1/ws`.

A browser cannot set headers on a WebSocket handshake, and an access token in the URL would land
in proxy logs for its whole lifetime. A ticket is worth one connection within `ttl_s` seconds:
it is stored in Redis and taken with GETDEL, so two handshakes can never both use it.
"""

from __future__ import annotations

import secrets
import uuid

from redis.asyncio import Redis

PREFIX = "kirana:rt:ticket:"


async def issue(redis: Redis, *, user_id: uuid.UUID, session_id: uuid.UUID, ttl_s: int) -> str:
    """A one-use socket ticket for this user and session, valid for `ttl_s` seconds."""
    ticket = secrets.token_urlsafe(24)
    await redis.set(PREFIX + ticket, f"{user_id}:{session_id}", ex=ttl_s)
    return ticket


async def redeem(redis: Redis, ticket: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The (user, session) a ticket was issued to, once; None if unknown, used or expired."""
    if not ticket or len(ticket) > 64:
        return None
    raw = await redis.getdel(PREFIX + ticket)
    if raw is None:
        return None
    user, _, session = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition(":")
    return uuid.UUID(user), uuid.UUID(session)
