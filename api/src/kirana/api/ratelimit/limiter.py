"""Fixed-window rate limits and progressive lockout kept in Redis, so every replica agrees.

Called by the accounts and two-factor flows (login, 2FA verification, SMS sending, password
reset). Subjects (emails, phone numbers, IPs) are hashed before they become Redis keys, so Redis
holds no personal data. Exceeding a limit raises `RateLimited` (429) with `Retry-After`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from redis.asyncio import Redis

from kirana.api.errors import RateLimited

PREFIX = "kirana:rl:"

# INCR the window counter, start its expiry on the first hit; returns {count, ttl_ms}.
_HIT = """
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
return {c, ttl}
"""

# One more consecutive failure; from the `free`-th on, lock for base * 2^(n - free), capped.
_FAIL = """
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local free = tonumber(ARGV[1])
if n >= free then
  local ms = math.min(tonumber(ARGV[2]) * (2 ^ (n - free)), tonumber(ARGV[3]))
  redis.call('SET', KEYS[2], n, 'PX', math.floor(ms))
  return {n, math.floor(ms)}
end
return {n, 0}
"""


@dataclass(frozen=True)
class Limit:
    """At most `max` events per `window_s` for one subject of the named limit."""

    name: str
    max: int
    window_s: int


@dataclass(frozen=True)
class Lockout:
    """After `free` consecutive failures, lock for `base_s`, doubling with each further failure."""

    name: str
    free: int = 5
    base_s: int = 60
    cap_s: int = 3600
    memory_s: int = 24 * 3600  # consecutive failures are forgotten after a quiet day


def subject_key(*parts: str) -> str:
    raw = "\x1f".join(p.strip().lower() for p in parts)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _retry_after(ms: int) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(ms / 1000)))}


async def hit(redis: Redis, limit: Limit, *subject: str) -> None:
    """Count one event; raise `RateLimited` when the window is already full."""
    key = f"{PREFIX}{limit.name}:{subject_key(*subject)}"
    count, ttl_ms = await redis.eval(_HIT, 1, key, limit.window_s * 1000)
    if int(count) > limit.max:
        raise RateLimited(
            f"too many attempts; try again in {max(1, math.ceil(int(ttl_ms) / 1000))} s",
            headers=_retry_after(int(ttl_ms)),
        )


async def remaining_ms(redis: Redis, limit: Limit, *subject: str) -> int:
    """Milliseconds until the window of a full limit resets (0 when not full)."""
    key = f"{PREFIX}{limit.name}:{subject_key(*subject)}"
    count = await redis.get(key)
    if count is None or int(count) < limit.max:
        return 0
    return max(0, int(await redis.pttl(key)))


def _lock_keys(lock: Lockout, subject: tuple[str, ...]) -> tuple[str, str]:
    s = subject_key(*subject)
    return f"{PREFIX}lock:{lock.name}:{s}:fails", f"{PREFIX}lock:{lock.name}:{s}:until"


async def ensure_unlocked(redis: Redis, lock: Lockout, *subject: str) -> None:
    _, until = _lock_keys(lock, subject)
    ttl = int(await redis.pttl(until))
    if ttl > 0:
        raise RateLimited(
            f"too many failed attempts; locked for {max(1, math.ceil(ttl / 1000))} s",
            headers=_retry_after(ttl),
            extra={"locked": True},
        )


async def record_failure(redis: Redis, lock: Lockout, *subject: str) -> int:
    """Count a failure; returns the lock duration it started in ms (0 = not locked yet)."""
    fails, until = _lock_keys(lock, subject)
    _, ms = await redis.eval(
        _FAIL, 2, fails, until, lock.free, lock.base_s * 1000, lock.cap_s * 1000, lock.memory_s * 1000
    )
    return int(ms)


async def record_success(redis: Redis, lock: Lockout, *subject: str) -> None:
    await redis.delete(*_lock_keys(lock, subject))
