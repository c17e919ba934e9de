"""Sync tables: the change log the mobile app pulls from, and the mutations it has pushed.

Writers append a `sync_changes` row (entity, id, owner) in their own transaction with no
sequence number. A single sequencer (`sync.changes.stamp`, serialised by an advisory lock) later
numbers committed rows from `sync_change_seq`, so a row with a higher number is never visible
before a row with a lower one: the cursor can be a plain sequence value and nothing is skipped.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Sequence, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from kirana.api.db.base import Base, utcnow

SYNC_SEQ = Sequence("sync_change_seq", metadata=Base.metadata)


class SyncChange(Base):
    __tablename__ = "sync_changes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    entity: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[uuid.UUID] = mapped_column()
    # NULL for catalog rows everybody sees; the owner's id for carts and orders.
    user_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("uq_sync_changes_seq", "seq", unique=True),
        Index("ix_sync_changes_unstamped", "id", postgresql_where=text("seq IS NULL")),
        Index("ix_sync_changes_entity", "entity", "entity_id"),
        Index("ix_sync_changes_user_seq", "user_id", "seq", postgresql_where=text("user_id IS NOT NULL")),
    )


class SyncMutation(Base):
    __tablename__ = "sync_mutations"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    client_mutation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class SyncFloor(Base):
    """One row: cursors below `floor_seq` (other than 0) refer to pruned history."""

    __tablename__ = "sync_floor"

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    floor_seq: Mapped[int] = mapped_column(BigInteger, default=0)
