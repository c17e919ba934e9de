"""Claim, complete, replay and release Idempotency-Key records (Stripe's semantics).

Used by `kirana.api.idempotency.deps` around every unsafe cart, checkout and order endpoint.

- The claim is its own short committed transaction, so a concurrent retry sees the key at once
  and gets 409 while the first request is still running.
- `complete` runs inside the request's unit of work: the stored response commits atomically with
  the order or cart change it describes.
- A domain error (4xx) is stored and replayed like a success; an unexpected failure releases the
  key, since its transaction rolled back and nothing happened.
- A claim left `running` by a crashed process may be taken over after `LEASE`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kirana.api.db.base import utcnow
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


def _insert_claim(
    *, owner: str, key: str, fingerprint: str, method: str, path: str, ttl: timedelta, now: Any
) -> Any:
    return (
        insert(IdempotencyKey)
        .values(
            id=uuid.uuid4(),
            owner=owner,
            key=key,
            fingerprint=fingerprint,
            method=method,
            path=path,
            state=RUNNING,
            locked_at=now,
            created_at=now,
            expires_at=now + ttl,
        )
        .on_conflict_do_nothing(index_elements=["owner", "key"])
        .returning(IdempotencyKey.id)
    )


async def try_claim(
    conn: AsyncConnection,
    *,
    owner: str,
    key: str,
    fingerprint: str,
    method: str,
    path: str,
    ttl: timedelta,
) -> Claimed | None:
    """The common case, a key never seen, in one statement on an autocommit connection (the
    claim is committed, and visible to retries, when this returns). None: the key exists, so
    ask `claim` what to do."""
    inserted = await conn.scalar(
        _insert_claim(
            owner=owner, key=key, fingerprint=fingerprint, method=method, path=path, ttl=ttl, now=utcnow()
        )
    )
    return Claimed(inserted) if inserted is not None else None


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
    """Take the key for this request, or say what to answer instead. Commit right after."""
    now = utcnow()
    inserted = await session.scalar(
        _insert_claim(
            owner=owner, key=key, fingerprint=fingerprint, method=method, path=path, ttl=ttl, now=now
        )
    )
    if inserted is not None:
        return Claimed(inserted)
    row = await session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.owner == owner, IdempotencyKey.key == key)
        .with_for_update()
    )
    if row is None:  # purged between the two statements: try once more
        return await claim(
            session, owner=owner, key=key, fingerprint=fingerprint, method=method, path=path, ttl=ttl
        )
    if row.expires_at <= now:
        _reset(row, fingerprint=fingerprint, method=method, path=path, now=now, ttl=ttl)
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
        raise KeyInUse(
            "a request with this Idempotency-Key is still being processed; retry shortly",
            headers={"Retry-After": "1"},
        )
    row.locked_at = now  # the first attempt died without finishing: this retry takes over
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
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claim_id)
        .values(state=DONE, response_status=status, response_body=body, response_headers=headers)
    )


async def release(session: AsyncSession, *, claim_id: uuid.UUID) -> None:
    await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.id == claim_id, IdempotencyKey.state == RUNNING)
    )


async def purge_expired(session: AsyncSession, *, limit: int = 10_000) -> int:
    ids = select(IdempotencyKey.id).where(IdempotencyKey.expires_at < utcnow()).limit(limit)
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(ids)))
    return int(getattr(result, "rowcount", 0) or 0)
