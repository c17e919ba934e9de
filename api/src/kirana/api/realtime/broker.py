"""The Redis side of real time: each channel's numbered history and the fan-out to API replicas.

Redis pub/sub alone delivers at most once: a replica whose subscription blips misses messages
silently. So, as Centrifugo does, one Lua script (atomic in Redis) numbers a message, appends it
to the channel's bounded history stream and publishes it:

    SET dedup NX   -> the relay is at least once; an outbox event already published is skipped
    epoch          -> created (random) when the channel's keys are missing: after Redis lost
                      them (restart without persistence, eviction, expiry) sequence numbers
                      start again, and a client holding the old epoch is told to `resync`
    INCR seq       -> the per-channel sequence number
    XADD / XTRIM   -> history of at most `history_size` messages and `history_ttl_s` seconds
    PUBLISH        -> one fan-out channel every API process follows

A receiver that sees a gap in the numbers (a lost pub/sub message) or reconnects fills it from
the history; when the history no longer reaches back that far it sends `resync`. Called by the
workers' relay (`publish`) and by the API hub (`snapshot`).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis

FANOUT = "kirana:rt:fanout"
PREFIX = "kirana:rt:ch:"

_PUBLISH = """
if redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[5]) == false then return 0 end
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[2]
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SET', KEYS[3], epoch)
end
local seq = redis.call('INCR', KEYS[1])
local msg = '{"channel":' .. cjson.encode(ARGV[1]) .. ',"seq":' .. seq .. ',"epoch":"' .. epoch
  .. '",' .. string.sub(ARGV[3], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '*', 's', seq, 'm', msg)
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[6])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
redis.call('PUBLISH', ARGV[7], msg)
return seq
"""

_SNAPSHOT = """
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SET', KEYS[3], epoch, 'EX', ARGV[2])
end
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
return {epoch, seq, redis.call('XRANGE', KEYS[2], '-', '+')}
"""


@dataclass(frozen=True)
class Limits:
    history_size: int = 100
    history_ttl_s: int = 600
    meta_ttl_s: int = 86_400  # epoch and counter outlive the history, so a gap can be told apart


@dataclass(frozen=True)
class Snapshot:
    """A channel's epoch, last sequence number and retained messages (seq, JSON), oldest first."""

    epoch: str
    seq: int
    history: list[tuple[int, str]]


def _keys(channel: str, dedup: str = "") -> list[str]:
    base = PREFIX + channel
    keys = [base + ":seq", base + ":hist", base + ":epoch"]
    if dedup:
        keys.append(base + ":dedup:" + dedup)
    return keys


def message_body(*, type: str, data: dict[str, Any], at: datetime | None = None) -> str:
    """The message minus channel/seq/epoch, which the script puts in front."""
    when = (at or datetime.now(UTC)).isoformat()
    return json.dumps({"type": type, "time": when, "data": data}, separators=(",", ":"))


async def publish(redis: Redis, *, channel: str, body: str, dedup: str, limits: Limits = Limits()) -> int:
    """Number, store and fan out one message; 0 when `dedup` was published already."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    min_id = f"{max(now_ms - limits.history_ttl_s * 1000, 0)}-0"
    result = await redis.eval(
        _PUBLISH,
        4,
        *_keys(channel, dedup),
        channel,
        secrets.token_hex(6),
        body,
        str(limits.history_size),
        str(limits.meta_ttl_s),
        min_id,
        FANOUT,
    )
    return int(result)


async def snapshot(redis: Redis, channel: str, limits: Limits = Limits()) -> Snapshot:
    raw = cast(
        "list[Any]",
        await redis.eval(_SNAPSHOT, 3, *_keys(channel), secrets.token_hex(6), str(limits.meta_ttl_s)),
    )
    epoch = raw[0].decode() if isinstance(raw[0], bytes) else str(raw[0])
    history: list[tuple[int, str]] = []
    for _id, fields in raw[2]:
        f = dict(zip(fields[::2], fields[1::2], strict=True))
        history.append((int(f[b"s"]), f[b"m"].decode()))
    return Snapshot(epoch=epoch, seq=int(raw[1]), history=history)


def missed(snap: Snapshot, *, epoch: str, since: int) -> list[str] | None:
    """Messages after `since` from the history, or None when the client must resync (another
    epoch, or the history no longer reaches back to `since` + 1)."""
    if epoch != snap.epoch or since > snap.seq:
        return None
    if since == snap.seq:
        return []
    after = [m for s, m in snap.history if s > since]
    if not snap.history or snap.history[0][0] > since + 1:
        return None
    return after
