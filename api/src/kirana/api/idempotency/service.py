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
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.db.base import utcnow
from kirana.api.db.raw import Statement
from kirana.api.errors import Conflict, InvalidInput
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


_CLAIM = Statement(
    text(
        """
    WITH turn AS (SELECT pg_try_advisory_xact_lock(:lock_key) AS got),
    new AS (
        INSERT INTO idempotency_keys (id, owner, key, fingerprint, method, path, state, locked_at,
                                      created_at, expires_at)
        SELECT :id, :owner, :key, :fingerprint, :method, :path, 'running', now(), now(),
               now() + CAST(:ttl AS interval)
        FROM turn WHERE got
        ON CONFLICT (owner, key) DO NOTHING
        RETURNING id
    )
    SELECT (SELECT got FROM turn) AS got, (SELECT id FROM new) AS id
    """
    )
)

_COMPLETE = Statement(
    text(
        """
    UPDATE idempotency_keys
    SET state = 'done', response_status = :status, response_body = :body,
        response_headers = CAST(CAST(:headers AS text) AS jsonb)
    WHERE id = :id
    """
    )
)


def lock_key(owner: str, key: str) -> int:
    """The advisory lock (a signed 64-bit number) that serialises requests with one key."""
    digest = hashlib.blake2b(f"idempotency\n{owner}\n{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _in_use() -> KeyInUse:
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
    params = {
        "lock_key": lock_key(owner, key),
        "id": uuid.uuid4(),
        "owner": owner,
        "key": key,
        "fingerprint": fingerprint,
        "method": method,
        "path": path,
        "ttl": ttl,
    }
    turn = (await _CLAIM.fetch(session, params))[0]
    if not turn["got"]:
        raise _in_use()
    if turn["id"] is not None:  # the common case: a key never seen, one round trip
        return Claimed(turn["id"])
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
        raise _in_use()
    row.locked_at = now  # the first attempt died without finishing: this retry takes over
    await session.flush()
    return Claimed(row.id)


def _reset(
    row: IdempotencyKey, *, fingerprint: str, method: str, path: str, now: Any, ttl: timedelta
) -> None:
    row.fingerprint, row.method, row.path = fingerprint, method, path
    row.state, row.response_status, row.response_body, row.response_headers = RUNNING, None, None, None
    row.locked_at, row.created_at, row.expires_at = now, now, now + ttl


async def complete(
    session: AsyncSession,
    *,
    claim_id: uuid.UUID,
    status: int,
    body: bytes,
    headers: dict[str, str],
) -> None:
    """Store the response under the claimed key, in the transaction of the work it describes."""
    await _COMPLETE.fetch(
        session, {"id": claim_id, "status": status, "body": body, "headers": json.dumps(headers)}
    )


async def purge_expired(session: AsyncSession, *, limit: int = 10_000) -> int:
    ids = select(IdempotencyKey.id).where(IdempotencyKey.expires_at < utcnow()).limit(limit)
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(ids)))
    return int(getattr(result, "rowcount", 0) or 0)
