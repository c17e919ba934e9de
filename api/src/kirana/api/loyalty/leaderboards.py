"""Leaderboards in Redis sorted sets, computed from the ledger and rebuilt exactly from it.

Live updates (`refresh_users`, after the worker commits an earning or a reversal) recompute the
customer's scores from the ledger and write them absolutely (ZADD, or ZREM at zero or when the
customer opted out), so a replayed event changes nothing. `rebuild` recomputes every set and
swaps it in atomically (RENAME); `check` lists where the live sets differ from the ledger.
Equal scores rank by member (the user id), the order Redis keeps for equal scores, so a
rebuild ranks exactly like the live set. Names are masked (`rules.mask`).
Called by `loyalty.flows`, the loyalty router and `kirana leaderboards ...`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import NoScriptError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.db.engine import Database
from kirana.api.db.raw import Statement
from kirana.api.loyalty import boards, rules
from kirana.api.loyalty import schemas as s

_SCORES = text(
    """
    SELECT l.user_id, l.store_code, l.city, l.board_at, SUM(l.points) AS points,
           COALESCE(bool_or(a.leaderboard_opt_out), false) AS opted_out
    FROM loyalty_ledger l
    LEFT JOIN loyalty_accounts a ON a.user_id = l.user_id
    WHERE l.kind IN ('earn', 'reverse') AND l.board_at IS NOT NULL
      {where}
    GROUP BY l.user_id, l.store_code, l.city, l.board_at
    """
)


async def _ledger(
    session: AsyncSession, user_ids: Sequence[uuid.UUID] | None
) -> tuple[dict[str, dict[str, int]], dict[str, set[str]]]:
    """One read of the ledger: ({set key: {user id: score}} of the customers who take part, zero
    and negative scores included; {set key: every customer whose earnings ever counted in it},
    opted out or not, so a caller knows whom to remove)."""
    where = "AND l.user_id = ANY(:users)" if user_ids is not None else ""
    params: dict[str, Any] = {"users": list(user_ids)} if user_ids is not None else {}
    scores: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    touched: dict[str, set[str]] = defaultdict(set)
    for row in await session.execute(text(_SCORES.text.format(where=where)), params):
        member = str(row.user_id)
        for k in boards.keys_for(row.board_at, row.store_code, row.city):
            touched[k].add(member)
            if not row.opted_out:
                scores[k][member] += int(row.points)
    return {k: dict(v) for k, v in scores.items()}, touched


async def expected(
    session: AsyncSession, *, user_ids: Sequence[uuid.UUID] | None = None
) -> dict[str, dict[str, int]]:
    """{set key: {user id: score}} as the ledger says (zero and negative scores included, so a
    caller knows which members to remove)."""
    return (await _ledger(session, user_ids))[0]


async def refresh_users(session: AsyncSession, redis: Redis, *, user_ids: Sequence[uuid.UUID]) -> int:
    """Write these customers' scores as the ledger has them now (one ledger read, one pipeline);
    returns the sets written."""
    if not user_ids:
        return 0
    want, touched = await _ledger(session, user_ids)
    pipe = redis.pipeline(transaction=False)
    for k in set(want) | set(touched):
        scores = want.get(k, {})
        for member in touched.get(k, set()) | set(scores):
            score = scores.get(member, 0)
            if score > 0:
                pipe.zadd(k, {member: score})
            else:
                pipe.zrem(k, member)
    await pipe.execute()
    return len(set(want) | set(touched))


async def _live_keys(redis: Redis) -> set[str]:
    found: set[str] = set()
    async for k in redis.scan_iter(match=boards.PREFIX + "*", count=1000):
        name = k.decode() if isinstance(k, bytes) else str(k)
        if not name.endswith(":rebuilding"):
            found.add(name)
    return found


async def rebuild(session: AsyncSession, redis: Redis, *, chunk: int = 5000) -> dict[str, int]:
    """Recompute every set from the ledger and swap each in atomically; stale sets go."""
    want = await expected(session)
    live = await _live_keys(redis)
    written = 0
    for k, scores in want.items():
        positive = {m: sc for m, sc in scores.items() if sc > 0}
        if not positive:
            await redis.delete(k)
            continue
        tmp = k + ":rebuilding"
        await redis.delete(tmp)
        items = list(positive.items())
        for i in range(0, len(items), chunk):
            await redis.zadd(tmp, dict(items[i : i + chunk]))
        await redis.rename(tmp, k)
        written += 1
    stale = live - {k for k, v in want.items() if any(sc > 0 for sc in v.values())}
    if stale:
        await redis.delete(*stale)
    return {"sets": written, "removed": len(stale)}


async def check(session: AsyncSession, redis: Redis) -> list[dict[str, Any]]:
    """Every member whose live score differs from the ledger's (empty: they agree)."""
    want = {k: {m: sc for m, sc in v.items() if sc > 0} for k, v in (await expected(session)).items()}
    diffs: list[dict[str, Any]] = []
    for k in sorted(set(want) | await _live_keys(redis)):
        rows = cast("list[tuple[bytes, float]]", await redis.zrange(k, 0, -1, withscores=True))
        live = {(m.decode() if isinstance(m, bytes) else str(m)): int(sc) for m, sc in rows}
        expect = want.get(k, {})
        for member in sorted(set(live) | set(expect)):
            if live.get(member) != expect.get(member):
                diffs.append(
                    {"set": k, "user_id": member, "live": live.get(member), "ledger": expect.get(member)}
                )
    return diffs


async def read(
    db: Database,
    redis: Redis,
    *,
    period: str,
    scope: str,
    user_id: uuid.UUID,
    now: datetime,
    top: int = 10,
    around: int = 2,
) -> s.LeaderboardRead:
    """The top of one board, the caller's own rank and the neighbours around it."""
    pkey = boards.period_key(period, now)
    k = boards.key(pkey, scope)
    me = str(user_id)
    got = await _run_read(redis, k, me, top, around)
    head = _pairs(got[0])
    rank = None if got[1] is None else int(got[1])
    start = max(0, rank - around) if rank is not None else 0
    near = _pairs(got[2])
    members = {(m.decode() if isinstance(m, bytes) else str(m)) for m, _ in [*head, *near]}
    names = await _names(db, members)

    def standings(rows: list[tuple[bytes, float]], first: int) -> list[s.Standing]:
        out = []
        for i, (m, sc) in enumerate(rows):
            uid = m.decode() if isinstance(m, bytes) else str(m)
            out.append(
                s.Standing(
                    rank=first + i + 1, points=int(sc), name=rules.mask(names.get(uid, ""), uid), me=uid == me
                )
            )
        return out

    around_rows = standings(near, start)
    mine = next((x for x in around_rows if x.me), None)
    return s.LeaderboardRead(
        period=cast("s.Period", period),
        period_key=pkey,
        scope=scope,
        top=standings(head, 0),
        me=mine,
        around=around_rows,
    )


# KEYS[1] the set; ARGV: the caller, how many on top, how many either side of the caller.
# Returns {top, the caller's rank (nil when absent), the caller's neighbours}, flat
# member/score lists as ZREVRANGE WITHSCORES gives them.
_READ = """
local top = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local rank = redis.call('ZREVRANK', KEYS[1], ARGV[1])
if not rank then return {top, false, {}} end
local around = tonumber(ARGV[3])
local first = math.max(0, rank - around)
return {top, rank, redis.call('ZREVRANGE', KEYS[1], first, rank + around, 'WITHSCORES')}
"""


_READ_SHA = hashlib.sha1(_READ.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


async def _run_read(redis: Redis, key: str, *args: Any) -> Any:
    """The read script in one round trip: EVALSHA, or EVAL (which caches it) on a server that
    has not seen it yet."""
    try:
        return await redis.evalsha(_READ_SHA, 1, key, *args)
    except NoScriptError:
        return await redis.eval(_READ, 1, key, *args)


def _pairs(flat: list[Any]) -> list[tuple[bytes, float]]:
    return [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]


_NAMES = Statement(text("SELECT id, name FROM users WHERE id = ANY(CAST(:ids AS uuid[]))"))


async def _names(db: Database, members: set[str]) -> dict[str, str]:
    """The members' names in one statement on the hot pool: the read needs no session."""
    if not members:
        return {}
    rows = await _NAMES.fetch_alone(db, {"ids": [uuid.UUID(m) for m in members]})
    return {str(r["id"]): r["name"] or "" for r in rows}
