"""Payment tables: the Razorpay order per shop order, payments, the ledger, webhook events.

- `payment_checkouts`: one Razorpay order per shop order (asked again, the same one comes back).
- `payments`: one row per Razorpay payment id, its status moving only forward.
- `payment_ledger`: every money movement; `reference` is unique, so the verify call, a webhook
  and the reconciler racing over one capture write one row between them.
- `payment_webhook_events`: every signed webhook, keyed by `X-Razorpay-Event-Id` (duplicates
  are dropped by the key); the worker applies them and stamps `processed_at`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from kirana.api.db.base import Base, Timestamps, new_id, utcnow

LEDGER_KINDS = ("authorized", "captured", "refunded", "fee", "cod_collected")
PAYMENT_STATUSES = ("created", "authorized", "captured", "refunded", "failed")


class Checkout(Timestamps, Base):
    __tablename__ = "payment_checkouts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), unique=True)
    razorpay_order_id: Mapped[str] = mapped_column(String(40), unique=True)
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


class Payment(Timestamps, Base):
    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    razorpay_payment_id: Mapped[str] = mapped_column(String(40), unique=True)
    razorpay_order_id: Mapped[str] = mapped_column(String(40), index=True)
    # Null while the shop does not know the Razorpay order (flagged for staff).
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    method: Mapped[str] = mapped_column(String(20))
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12))
    failure_reason: Mapped[str | None] = mapped_column(String(60), default=None)
    # Why staff must look at it: amount/currency mismatch, unknown order, duplicate payment, ...
    flag: Mapped[str | None] = mapped_column(String(40), default=None)

    __table_args__ = (
        CheckConstraint(
            "status IN ('created', 'authorized', 'captured', 'refunded', 'failed')", "status_known"
        ),
        Index("ix_payments_flagged", "flag", postgresql_where=text("flag IS NOT NULL")),
    )


class LedgerEntry(Base):
    __tablename__ = "payment_ledger"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    razorpay_payment_id: Mapped[str | None] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "kind IN ('authorized', 'captured', 'refunded', 'fee', 'cod_collected')", "kind_known"
        ),
        CheckConstraint("amount_paise >= 0", "amount_not_negative"),
    )


class WebhookEvent(Base):
    __tablename__ = "payment_webhook_events"

    event_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    event: Mapped[str] = mapped_column(String(60))
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    outcome: Mapped[str | None] = mapped_column(Text, default=None)
    # Kept, never dropped, when it names a Razorpay order the shop does not know.
    flag: Mapped[str | None] = mapped_column(String(40), default=None)

    __table_args__ = (
        Index("ix_payment_webhook_events_due", "received_at", postgresql_where=text("processed_at IS NULL")),
    )


class RazorpayCustomer(Base):
    """The Razorpay customer that holds a shop user's saved cards and UPI ids (tokens live at
    Razorpay; the shop stores no card data, only this id)."""

    __tablename__ = "payment_customers"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True)
    razorpay_customer_id: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
