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
from collections.abc import Mapping, Sequence
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
    """The key itself if it is well-formed; KeyMalformed (422) otherwise."""
    if not KEY_PATTERN.match(key):
        raise KeyMalformed(
            "Idempotency-Key must be 8-255 characters of letters, digits, '-', '_', ':' or '.' "
            "(a UUID v4 is ideal)"
        )
    return key


def fingerprint(*, method: str, path: str, body: Any) -> str:
    """What a key is bound to: a hash of the method, path and canonical JSON body."""
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


def request_of(*, owner: str, key: str, method: str, path: str, body: Any) -> Request:
    """What `key` is claimed for when `owner` sends `body` (JSON-ready) to `method path`."""
    fp = fingerprint(method=method, path=path, body=body)
    return Request(owner=owner, key=key, fingerprint=fp, method=method, path=path)


ANONYMOUS = "anonymous"


def owner_of(user_id: uuid.UUID | None) -> str:
    """Whose keys these are: a signed-in user's, or `ANONYMOUS` (a caller holding nothing that
    could scope a key: such requests run without one, `deps.Idempotent.run`)."""
    return f"user:{user_id}" if user_id else ANONYMOUS


@dataclass(frozen=True)
class Answer:
    """A response to store under a claimed key."""

    claim_id: uuid.UUID
    status: int
    body: bytes
    headers: dict[str, str]


# SQL fragments (common table expressions), run alone below and composed by `orders.batch`
# with the order statements so that a batch of orders takes fewer round trips.
#
# CLAIM_CTES claims keys never seen before, any number at once: each key's advisory lock is
# tried without waiting, and where it is taken the key is inserted unless it exists. In
# `claims`, `got` false: another transaction holds the key (409); `claimed` false with `got`
# true: the key exists and `claim` must look at it.
CLAIM_CTES = """
    claim_wanted AS MATERIALIZED (
        SELECT w.*, pg_try_advisory_xact_lock(w.lock_key) AS got
        FROM unnest(CAST(:claim_ids AS uuid[]), CAST(:claim_owners AS text[]),
                    CAST(:claim_keys AS text[]), CAST(:claim_fingerprints AS text[]),
                    CAST(:claim_methods AS text[]), CAST(:claim_paths AS text[]),
                    CAST(:claim_locks AS bigint[]))
             WITH ORDINALITY AS w(id, owner, key, fingerprint, method, path, lock_key, ord)
    ), claim_new AS (
        INSERT INTO idempotency_keys (id, owner, key, fingerprint, method, path, state, locked_at,
                                      created_at, expires_at)
        SELECT id, owner, key, fingerprint, method, path, 'running', now(), now(),
               now() + CAST(:claim_ttl AS interval)
        FROM claim_wanted WHERE got
        ON CONFLICT (owner, key) DO NOTHING
        RETURNING id
    ), claims AS (
        SELECT w.ord, w.id, w.got, claim_new.id IS NOT NULL AS claimed
        FROM claim_wanted w LEFT JOIN claim_new ON claim_new.id = w.id
    )"""

# COMPLETE_CTE stores answers under claimed keys.
COMPLETE_CTE = """
    completed AS (
        UPDATE idempotency_keys k
        SET state = 'done', response_status = r.status, response_body = r.body,
            response_headers = CAST(r.headers AS jsonb)
        FROM unnest(CAST(:answer_ids AS uuid[]), CAST(:answer_statuses AS int[]),
                    CAST(:answer_bodies AS bytea[]), CAST(:answer_headers AS text[]))
             AS r(id, status, body, headers)
        WHERE k.id = r.id
    )"""

_CLAIM_NEW = Statement(text(f"WITH {CLAIM_CTES} SELECT id, got, claimed FROM claims ORDER BY ord"))
_COMPLETE = Statement(text(f"WITH {COMPLETE_CTE} SELECT 1"))


def claim_params(requests: Sequence[Request], *, ttl: timedelta) -> dict[str, Any]:
    """The parameters of CLAIM_CTES for these requests (one (owner, key) at most once)."""
    return {
        "claim_ids": [uuid.uuid4() for _ in requests],
        "claim_owners": [r.owner for r in requests],
        "claim_keys": [r.key for r in requests],
        "claim_fingerprints": [r.fingerprint for r in requests],
        "claim_methods": [r.method for r in requests],
        "claim_paths": [r.path for r in requests],
        "claim_locks": [lock_key(r.owner, r.key) for r in requests],
        "claim_ttl": ttl,
    }


def claims_of(rows: Sequence[Mapping[str, Any]]) -> list[Claimed | KeyInUse | None]:
    """What CLAIM_CTES' `claims` rows (in request order) mean for each request: Claimed;
    KeyInUse (another transaction holds the key); or None, the key exists and `claim` decides."""
    return [Claimed(_uuid(row["id"])) if row["claimed"] else None if row["got"] else in_use() for row in rows]


def answer_params(answers: Sequence[Answer]) -> dict[str, Any]:
    """The parameters of COMPLETE_CTE."""
    return {
        "answer_ids": [a.claim_id for a in answers],
        "answer_statuses": [a.status for a in answers],
        "answer_bodies": [a.body for a in answers],
        "answer_headers": [json.dumps(a.headers) for a in answers],
    }


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def lock_key(owner: str, key: str) -> int:
    """The advisory lock (a signed 64-bit number) that serialises requests with one key."""
    digest = hashlib.blake2b(f"idempotency\n{owner}\n{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def is_verdict(exc: KiranaError) -> bool:
    """Whether a refusal is a verdict on the request's content (4xx other than 401, 403 and
    429), stored under the key and replayed to retries like a success."""
    return 400 <= exc.status < 500 and exc.status not in (401, 403, 429)


def in_use() -> KeyInUse:
    """The 409 for a key whose first request is still running (retry after a second)."""
    return KeyInUse(
        "a request with this Idempotency-Key is still being processed; retry shortly",
        headers={"Retry-After": "1"},
    )


async def claim(session: AsyncSession, request: Request, *, ttl: timedelta) -> Claimed | Stored:
    """Take the key for this request in the session's transaction, or say what to answer
    instead: the stored response (Stored), 409 while another request holds the key (KeyInUse),
    422 for a different request under the same key (KeyReused)."""
    (turn,) = claims_of(await _CLAIM_NEW.fetch(session, claim_params([request], ttl=ttl)))
    if isinstance(turn, KeyInUse):
        raise turn
    if turn is not None:  # the common case: a key never seen, one round trip
        return turn
    row = await session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.owner == request.owner, IdempotencyKey.key == request.key)
        .with_for_update()
    )
    if row is None:  # purged since: the lock is ours (re-entrant), so this insert succeeds
        return await claim(session, request, ttl=ttl)
    now = utcnow()
    if row.expires_at <= now:
        _reset(row, request, now=now, ttl=ttl)
        await session.flush()  # before `complete`, which writes past the ORM
        return Claimed(row.id)
    if row.fingerprint != request.fingerprint:
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


async def peek(session: AsyncSession, request: Request) -> Stored | None:
    """What `claim` would say of a key, without taking it: the stored response, None when the
    key is free (or its first attempt is still running), 422 (KeyReused) for a different request
    under the same key. For routes whose effect leaves the database (a refund asked of
    Razorpay) and must be refused before it, not after."""
    row = await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.owner == request.owner,
            IdempotencyKey.key == request.key,
            IdempotencyKey.expires_at > utcnow(),
        )
    )
    if row is None:
        return None
    if row.fingerprint != request.fingerprint:
        raise KeyReused(
            f"this Idempotency-Key was first used for {row.method} {row.path} with a different body; "
            "use a new key for a new request"
        )
    if row.state == DONE and row.response_status is not None and row.response_body is not None:
        return Stored(row.response_status, row.response_body, dict(row.response_headers or {}))
    return None


def _reset(row: IdempotencyKey, request: Request, *, now: Any, ttl: timedelta) -> None:
    row.fingerprint, row.method, row.path = request.fingerprint, request.method, request.path
    row.state, row.response_status, row.response_body, row.response_headers = RUNNING, None, None, None
    row.locked_at, row.created_at, row.expires_at = now, now, now + ttl


async def complete(session: AsyncSession, answer: Answer) -> None:
    """Store the response under the claimed key, in the transaction of the work it describes."""
    await _COMPLETE.fetch(session, answer_params([answer]))


async def purge_expired(session: AsyncSession, *, limit: int = 10_000) -> int:
    """Delete at most `limit` keys past their expiry; returns how many."""
    ids = select(IdempotencyKey.id).where(IdempotencyKey.expires_at < utcnow()).limit(limit)
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(ids)))
    return int(getattr(result, "rowcount", 0) or 0)
