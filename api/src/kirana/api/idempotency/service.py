"""Claim, complete, replay and release Idempotency-Key records (Stripe's semantics).

Used by `kirana.api.idempotency.deps` around every unsafe cart, checkout and order endpoint.

- `claim` runs first in the request's own transaction and takes a transaction-scoped advisory
  lock on (owner, key) without waiting: a concurrent retry fails to take it and gets 409 at
  once, while the first request is still running.
- `complete` runs in that same transaction: the key, the stored response and the order or cart
  change it describes commit together, or not at all (one transaction, one commit per request).
- A domain error (4xx) is stored and replayed like a success (the deps layer records it in a
  second short transaction); an unexpected failure rolls back and leaves no trace of the key.
- A key whose row says `running` (written by an earlier release, which committed claims on
  their own) still answers 409 until `LEASE` has passed, then a retry takes it over.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.db.base import utcnow
from kirana.api.db.raw import Statement
from kirana.api.errors import Conflict, InvalidInput, KiranaError
from kirana.api.idempotency.models import DONE, RUNNING, IdempotencyKey

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-:.]{7,254}$")
LEASE = timedelta(seconds=60)


class KeyInUse(Conflict):
    code, title = "idempotency-key-in-use", "Request with this Idempotency-Key is still running"


class KeyReused(InvalidInput):
    code, title = "idempotency-key-reused", "Idempotency-Key was used for a different request"


class KeyRequired(InvalidInput):
    status, code, title = 428, "idempotency-key-required", "Idempotency-Key required"


class KeyMalformed(InvalidInput):
    code, title = "idempotency-key-malformed", "Malformed Idempotency-Key"


def validate_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise KeyMalformed(
            "Idempotency-Key must be 8-255 characters of letters, digits, '-', '_', ':' or '.' "
            "(a UUID v4 is ideal)"
        )
    return key


def fingerprint(*, method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class Stored:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID


@dataclass(frozen=True)
class Request:
    """What a key is claimed for (`fingerprint` of the method, path and body)."""

    owner: str
    key: str
    fingerprint: str
    method: str
    path: str


@dataclass(frozen=True)
class Answer:
    """A response to store under a claimed key."""

    claim_id: uuid.UUID
    status: int
    body: bytes
    headers: dict[str, str]


# Claims keys never seen before, any number at once (`orders.batch` claims a batch's keys in one
# round trip): each key's advisory lock is tried without waiting, and where it is taken the key
# is inserted unless it exists. `got` false: another transaction holds the key (409); `claimed`
# false with `got` true: the key exists and `claim` must look at it.
_CLAIM_NEW = Statement(
    text(
        """
    WITH wanted AS MATERIALIZED (
        SELECT w.*, pg_try_advisory_xact_lock(w.lock_key) AS got
        FROM unnest(CAST(:ids AS uuid[]), CAST(:owners AS text[]), CAST(:keys AS text[]),
                    CAST(:fingerprints AS text[]), CAST(:methods AS text[]), CAST(:paths AS text[]),
                    CAST(:lock_keys AS bigint[]))
             WITH ORDINALITY AS w(id, owner, key, fingerprint, method, path, lock_key, ord)
    ), new AS (
        INSERT INTO idempotency_keys (id, owner, key, fingerprint, method, path, state, locked_at,
                                      created_at, expires_at)
        SELECT id, owner, key, fingerprint, method, path, 'running', now(), now(),
               now() + CAST(:ttl AS interval)
        FROM wanted WHERE got
        ON CONFLICT (owner, key) DO NOTHING
        RETURNING id
    )
    SELECT w.id, w.got, new.id IS NOT NULL AS claimed
    FROM wanted w LEFT JOIN new ON new.id = w.id
    ORDER BY w.ord
    """
    )
)

_COMPLETE = Statement(
    text(
        """
    UPDATE idempotency_keys k
    SET state = 'done', response_status = r.status, response_body = r.body,
        response_headers = CAST(r.headers AS jsonb)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS int[]), CAST(:bodies AS bytea[]),
                CAST(:headers AS text[])) AS r(id, status, body, headers)
    WHERE k.id = r.id
    """
    )
)


def lock_key(owner: str, key: str) -> int:
    """The advisory lock (a signed 64-bit number) that serialises requests with one key."""
    digest = hashlib.blake2b(f"idempotency\n{owner}\n{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def is_verdict(exc: KiranaError) -> bool:
    """Whether a refusal is a verdict on the request's content (4xx other than 401, 403 and
    429), stored under the key and replayed to retries like a success."""
    return 400 <= exc.status < 500 and exc.status not in (401, 403, 429)


def in_use() -> KeyInUse:
    return KeyInUse(
        "a request with this Idempotency-Key is still being processed; retry shortly",
        headers={"Retry-After": "1"},
    )


async def claim(
    session: AsyncSession,
    *,
    owner: str,
    key: str,
    fingerprint: str,
    method: str,
    path: str,
    ttl: timedelta,
) -> Claimed | Stored:
    """Take the key for this request in the session's transaction, or say what to answer
    instead: the stored response (Stored), 409 while another request holds the key (KeyInUse),
    422 for a different request under the same key (KeyReused)."""
    (turn,) = await claim_new(
        session, [Request(owner=owner, key=key, fingerprint=fingerprint, method=method, path=path)], ttl=ttl
    )
    if isinstance(turn, KeyInUse):
        raise turn
    if turn is not None:  # the common case: a key never seen, one round trip
        return turn
    row = await session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.owner == owner, IdempotencyKey.key == key)
        .with_for_update()
    )
    if row is None:  # purged since: the lock is ours (re-entrant), so this insert succeeds
        return await claim(
            session, owner=owner, key=key, fingerprint=fingerprint, method=method, path=path, ttl=ttl
        )
    now = utcnow()
    if row.expires_at <= now:
        _reset(row, fingerprint=fingerprint, method=method, path=path, now=now, ttl=ttl)
        await session.flush()  # before `complete`, which writes past the ORM
        return Claimed(row.id)
    if row.fingerprint != fingerprint:
        raise KeyReused(
            f"this Idempotency-Key was first used for {row.method} {row.path} with a different body; "
            "use a new key for a new request"
        )
    if row.state == DONE:
        assert row.response_status is not None and row.response_body is not None
        return Stored(row.response_status, row.response_body, dict(row.response_headers or {}))
    if row.locked_at > now - LEASE:
        raise in_use()
    row.locked_at = now  # the first attempt died without finishing: this retry takes over
    await session.flush()
    return Claimed(row.id)


def _reset(
    row: IdempotencyKey, *, fingerprint: str, method: str, path: str, now: Any, ttl: timedelta
) -> None:
    row.fingerprint, row.method, row.path = fingerprint, method, path
    row.state, row.response_status, row.response_body, row.response_headers = RUNNING, None, None, None
    row.locked_at, row.created_at, row.expires_at = now, now, now + ttl


async def claim_new(
    session: AsyncSession, requests: Sequence[Request], *, ttl: timedelta
) -> list[Claimed | KeyInUse | None]:
    """Claim keys never seen before, in one round trip, in the session's transaction. For each
    request: Claimed; KeyInUse (another transaction holds the key); or None, the key exists and
    `claim` decides (replay, 422, 409 or takeover). One (owner, key) must not appear twice."""
    params = {
        "ids": [uuid.uuid4() for _ in requests],
        "owners": [r.owner for r in requests],
        "keys": [r.key for r in requests],
        "fingerprints": [r.fingerprint for r in requests],
        "methods": [r.method for r in requests],
        "paths": [r.path for r in requests],
        "lock_keys": [lock_key(r.owner, r.key) for r in requests],
        "ttl": ttl,
    }
    rows = await _CLAIM_NEW.fetch(session, params)
    return [Claimed(row["id"]) if row["claimed"] else None if row["got"] else in_use() for row in rows]


async def complete(
    session: AsyncSession,
    *,
    claim_id: uuid.UUID,
    status: int,
    body: bytes,
    headers: dict[str, str],
) -> None:
    """Store the response under the claimed key, in the transaction of the work it describes."""
    await complete_all(session, [Answer(claim_id, status, body, headers)])


async def complete_all(session: AsyncSession, answers: Sequence[Answer]) -> None:
    """`complete` for many keys in one round trip."""
    await _COMPLETE.fetch(
        session,
        {
            "ids": [a.claim_id for a in answers],
            "statuses": [a.status for a in answers],
            "bodies": [a.body for a in answers],
            "headers": [json.dumps(a.headers) for a in answers],
        },
    )


async def purge_expired(session: AsyncSession, *, limit: int = 10_000) -> int:
    ids = select(IdempotencyKey.id).where(IdempotencyKey.expires_at < utcnow()).limit(limit)
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(ids)))
    return int(getattr(result, "rowcount", 0) or 0)
