"""Appending to and reading the audit log. Called by every flow that changes security state.

`record` appends inside the caller's transaction (the event commits with the change it
describes). It takes a transaction-scoped advisory lock so entries chain in commit order with a
gap-free `seq`; that serialises audited writes, which is the price of a single chain.
`record_now` appends in its own transaction, for failures whose request is about to roll back.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.audit import chain
from kirana.api.audit.models import AuditEvent
from kirana.api.db.base import utcnow
from kirana.api.db.engine import Database

_CHAIN_LOCK = 0x6B69_7261_6E61_6175  # pg advisory lock id for the audit chain head


@dataclass(frozen=True)
class AuditContext:
    """Who did it and from where, taken from the request."""

    actor_id: uuid.UUID | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    def as_actor(self, actor_id: uuid.UUID | None) -> AuditContext:
        return replace(self, actor_id=actor_id)


SYSTEM = AuditContext()


async def record(
    session: AsyncSession,
    ctx: AuditContext,
    *,
    action: str,
    outcome: str = "ok",
    target_type: str | None = None,
    target_id: str | uuid.UUID | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to the hash chain (serialised by an advisory lock), in the caller's transaction."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    last = (
        await session.execute(
            select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
        )
    ).first()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, chain.GENESIS)
    event = AuditEvent(
        seq=seq,
        occurred_at=utcnow(),
        actor_id=ctx.actor_id,
        actor_ip=ctx.ip,
        user_agent=(ctx.user_agent or "")[:300] or None,
        request_id=ctx.request_id,
        action=action,
        outcome=outcome,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        before=dict(before) if before is not None else None,
        after=dict(after) if after is not None else None,
        prev_hash=prev_hash,
        hash="",
    )
    event.hash = chain.entry_hash(prev_hash, _fields(event))
    session.add(event)
    await session.flush()
    return event


async def record_now(db: Database, ctx: AuditContext, **kwargs: Any) -> None:
    """Append in a transaction of its own (the caller's is about to roll back)."""
    async with db.session() as session:
        await record(session, ctx, **kwargs)


def _fields(event: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in chain.HASHED_FIELDS}


def to_dict(event: AuditEvent) -> dict[str, Any]:
    """JSON-ready, with values exactly as hashed, so an export can be verified offline."""
    fields = {k: chain.plain(v) for k, v in _fields(event).items()}
    return {"id": event.id, **fields, "prev_hash": event.prev_hash, "hash": event.hash}


@dataclass(frozen=True)
class Filters:
    actor_id: uuid.UUID | None = None
    action: str | None = None
    outcome: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(filters: Filters) -> Any:
    stmt = select(AuditEvent)
    if filters.actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == filters.actor_id)
    if filters.action is not None:
        # `login.*` matches every login event
        if filters.action.endswith(".*"):
            stmt = stmt.where(AuditEvent.action.startswith(filters.action[:-1], autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.action == filters.action)
    if filters.outcome is not None:
        stmt = stmt.where(AuditEvent.outcome == filters.outcome)
    if filters.target_type is not None:
        stmt = stmt.where(AuditEvent.target_type == filters.target_type)
    if filters.target_id is not None:
        stmt = stmt.where(AuditEvent.target_id == filters.target_id)
    if filters.since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(AuditEvent.occurred_at < filters.until)
    return stmt


async def page(
    session: AsyncSession, *, filters: Filters, before_seq: int | None, limit: int
) -> tuple[list[AuditEvent], int | None]:
    """Newest first; returns the events and the cursor (a seq) for the next page, if any."""
    stmt = _filtered(filters)
    if before_seq is not None:
        stmt = stmt.where(AuditEvent.seq < before_seq)
    rows = list((await session.scalars(stmt.order_by(AuditEvent.seq.desc()).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].seq if more and rows else None)


async def stream(db: Database, *, filters: Filters, batch: int = 500) -> AsyncIterator[dict[str, Any]]:
    """Every matching event, oldest first, in batches (for the JSON-lines export)."""
    after = 0
    while True:
        async with db.session() as session:
            stmt = _filtered(filters).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(batch)
            rows = list((await session.scalars(stmt)).all())
        for row in rows:
            yield to_dict(row)
        if len(rows) < batch:
            return
        after = rows[-1].seq


def iter_chain(conn: Connection, *, batch: int = 2000) -> Iterator[dict[str, Any]]:
    """Every row in seq order (synchronous; used by `kirana audit verify`)."""
    after: int | None = None
    cols = ", ".join(("id", "prev_hash", "hash", *chain.HASHED_FIELDS))
    while True:
        where = "" if after is None else "WHERE seq > :after"
        rows = (
            conn.execute(
                text(f"SELECT {cols} FROM audit_log {where} ORDER BY seq LIMIT :n"),
                {"after": after, "n": batch},
            )
            .mappings()
            .all()
        )
        yield from (dict(r) for r in rows)
        if len(rows) < batch:
            return
        after = rows[-1]["seq"]


def verify_database(url: str) -> chain.Report:
    """Walk the whole chain in the database at `url` (psycopg, read-only transaction)."""
    from sqlalchemy import create_engine

    from kirana.api.db.urls import sync_url

    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            return chain.verify(iter_chain(conn))
    finally:
        engine.dispose()
