"""Loyalty tables: the append-only points ledger and what is derived from it.

- `loyalty_ledger`: every points movement (earn, redeem, release, expire, reverse, adjust).
  `source` is unique, so a replayed event writes nothing the second time; a trigger refuses
  UPDATE and DELETE. `lot_id` names the earning an expiry or a reversal takes from;
  `board_at` is when the points count on the leaderboards (a reversal counts where its
  earning did).
- `loyalty_accounts`: the balance the ledger sums to, split into `balance` (spendable, never
  below zero: a CHECK) and `debt` (what a refund reversed beyond the balance; later earnings
  pay it first). `balance - debt == SUM(points)` is what `kirana loyalty verify` checks.
- `loyalty_order_points`: one row per paid order: the points it earns, pending until the order
  is delivered, then credited, reversed on refund, void when cancelled before delivery.
- `loyalty_redemptions`: points held against an unpaid order, released if it never gets paid.
- `loyalty_campaigns`: the earn rules staff configure (a bonus rate and a multiplier, by store,
  category or brand, between a start and an optional end).
- `loyalty_achievements`: each customer's progress on each rule and when it unlocked.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from kirana.api.db.base import Base, new_id, utcnow

KINDS = ("earn", "redeem", "release", "expire", "reverse", "adjust")
ORDER_POINT_STATUSES = ("pending", "credited", "reversed", "void")
REDEMPTION_STATUSES = ("held", "applied", "released")


class LedgerEntry(Base):
    __tablename__ = "loyalty_ledger"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(200), unique=True)
    order_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    lot_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    store_code: Mapped[str | None] = mapped_column(String(40), default=None)
    city: Mapped[str | None] = mapped_column(String(100), default=None)
    board_at: Mapped[datetime | None] = mapped_column(default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("kind IN ('earn', 'redeem', 'release', 'expire', 'reverse', 'adjust')", "kind_known"),
        CheckConstraint(
            "(kind IN ('earn', 'release') AND points > 0) OR "
            "(kind IN ('redeem', 'expire', 'reverse') AND points < 0) OR "
            "(kind = 'adjust' AND points <> 0)",
            "sign_matches_kind",
        ),
        Index("ix_loyalty_ledger_user", "user_id", "id"),
        Index("ix_loyalty_ledger_board", "board_at", postgresql_where=text("board_at IS NOT NULL")),
    )


class Account(Base):
    __tablename__ = "loyalty_accounts"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    debt: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    pending: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    tier: Mapped[str] = mapped_column(String(12), default="bronze", server_default="bronze")
    spend_12m_paise: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    leaderboard_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())

    __table_args__ = (
        CheckConstraint("balance >= 0", "balance_not_negative"),
        CheckConstraint("debt >= 0", "debt_not_negative"),
        CheckConstraint("balance = 0 OR debt = 0", "balance_or_debt"),
        CheckConstraint("pending >= 0", "pending_not_negative"),
    )


class OrderPoints(Base):
    __tablename__ = "loyalty_order_points"

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    store_code: Mapped[str] = mapped_column(String(40))
    city: Mapped[str | None] = mapped_column(String(100), default=None)
    spend_paise: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))
    paid_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'credited', 'reversed', 'void')", "status_known"),
        CheckConstraint("points >= 0 AND spend_paise >= 0", "amounts_not_negative"),
    )


class Redemption(Base):
    __tablename__ = "loyalty_redemptions"

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    value_paise: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="held")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("status IN ('held', 'applied', 'released')", "status_known"),
        CheckConstraint("points > 0 AND value_paise > 0", "amounts_positive"),
    )


class Campaign(Base):
    __tablename__ = "loyalty_campaigns"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    store_code: Mapped[str | None] = mapped_column(String(40), default=None)
    category: Mapped[str | None] = mapped_column(String(120), default=None)
    brand: Mapped[str | None] = mapped_column(String(120), default=None)
    bonus_per_100_rupees: Mapped[int] = mapped_column(Integer, default=0)
    multiplier_percent: Mapped[int] = mapped_column(Integer, default=100)
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("ends_at IS NULL OR ends_at > starts_at", "ends_after_start"),
        CheckConstraint("bonus_per_100_rupees >= 0", "bonus_not_negative"),
        CheckConstraint("multiplier_percent BETWEEN 100 AND 1000", "multiplier_range"),
        Index("ix_loyalty_campaigns_window", "starts_at", "ends_at"),
    )


class Achievement(Base):
    __tablename__ = "loyalty_achievements"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True)
    rule: Mapped[str] = mapped_column(String(40), primary_key=True)
    progress: Mapped[int] = mapped_column(BigInteger, default=0)
    target: Mapped[int] = mapped_column(BigInteger)
    unlocked_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())
