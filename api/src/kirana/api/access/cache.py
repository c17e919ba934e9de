"""The per-process cache of effective permissions, kept honest through Redis pub/sub.

`PermissionCache` holds one `Snapshot` per user, computed once per (user, grants version) by the
access service. When grants, sessions or 2FA change on any replica, that replica publishes the
user id on `CHANNEL` after its transaction commits; every process drops the entry. Safety nets:
entries expire after a TTL and when a time-bound grant lapses; while the subscription is down
the cache is bypassed (each check reads the database), and it is cleared on every (re)subscribe,
so a missed message can never keep a revoked permission alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

log = logging.getLogger(__name__)

CHANNEL = "kirana:access:invalidate"
ALL = "*"


@dataclass(frozen=True)
class Snapshot:
    """Everything an authorization decision needs about one user."""

    user_id: uuid.UUID
    version: int
    roles: frozenset[str]
    permissions: frozenset[str]
    denied: frozenset[str]
    scopes: frozenset[str]
    two_factor_enabled: bool
    needs_two_factor: bool  # holds privileged permissions but has no 2FA
    sessions: Mapping[uuid.UUID, float | None]  # active session -> last strong auth (unix time)
    revoked_sessions: frozenset[uuid.UUID]
    expires: float  # unix time after which the snapshot must be recomputed


Loader = Callable[[uuid.UUID], Awaitable[Snapshot | None]]


class PermissionCache:
    def __init__(self, load: Loader, *, max_entries: int = 50_000) -> None:
        self._load = load
        self._entries: dict[uuid.UUID, Snapshot] = {}
        self._inflight: dict[uuid.UUID, asyncio.Future[Snapshot | None]] = {}
        self._epoch = 0  # bumped by every invalidation; a load that raced one is not stored
        self.max_entries = max_entries
        self.subscribed = asyncio.Event()
        self.hits = 0
        self.loads = 0

    def peek(self, user_id: uuid.UUID) -> Snapshot | None:
        entry = self._entries.get(user_id)
        if entry is not None and entry.expires > time.time() and self.subscribed.is_set():
            return entry
        return None

    async def get(self, user_id: uuid.UUID, *, refresh: bool = False) -> Snapshot | None:
        if not refresh:
            entry = self.peek(user_id)
            if entry is not None:
                self.hits += 1
                return entry
        pending = self._inflight.get(user_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Snapshot | None] = asyncio.get_running_loop().create_future()
        self._inflight[user_id] = future
        epoch = self._epoch
        try:
            self.loads += 1
            snapshot = await self._load(user_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._inflight.pop(user_id, None)
        future.set_result(snapshot)
        if snapshot is not None and epoch == self._epoch and self.subscribed.is_set():
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[user_id] = snapshot
        return snapshot

    def invalidate(self, user_id: uuid.UUID, version: int | None = None) -> None:
        self._epoch += 1
        entry = self._entries.get(user_id)
        if entry is not None and (version is None or entry.version < version):
            del self._entries[user_id]

    def clear(self) -> None:
        self._epoch += 1
        self._entries.clear()

    def handle(self, message: bytes | str) -> None:
        text = message.decode() if isinstance(message, bytes) else message
        if text == ALL:
            self.clear()
            return
        user, _, version = text.partition(":")
        try:
            self.invalidate(uuid.UUID(user), int(version) if version else None)
        except ValueError:
            log.warning("ignoring malformed invalidation", extra={"message": text[:100]})

    async def listen(self, redis: Redis) -> None:
        """Follow `CHANNEL` until cancelled, resubscribing (and clearing) after any failure."""
        while True:
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self.clear()
                self.subscribed.set()
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None and msg.get("type") == "message":
                        self.handle(msg["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.subscribed.is_set():
                    log.warning(
                        "permission invalidations unavailable; cache bypassed", extra={"error": repr(exc)}
                    )
                self.subscribed.clear()
                self.clear()
                await asyncio.sleep(0.5)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def publish(redis: Redis, user_id: uuid.UUID | None, version: int | None = None) -> None:
    """Tell every process to drop a user's snapshot (None: everybody's). Call after commit."""
    message = ALL if user_id is None else f"{user_id}:{version or ''}"
    try:
        await redis.publish(CHANNEL, message)
    except Exception as exc:  # the TTL still bounds staleness; never fail the committed change
        log.error("could not publish permission invalidation", extra={"error": repr(exc)})
