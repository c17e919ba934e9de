"""Payment tables: the Razorpay order per shop order, payments, the ledger, webhook events.

- `payment_checkouts`: one Razorpay order per shop order (asked again, the same one comes back).
- `payments`: one row per Razorpay payment id, its status moving only forward.
- `payment_ledger`: every money movement; `reference` is unique, so the verify call, a webhook
  and the reconciler racing over one capture write one row between them.
- `payment_webhook_events`: every signed webhook, keyed by `X-Razorpay-Event-Id` (duplicates
  are dropped by the key); the worker applies them and stamps `processed_at`.
- `payment_refunds`: every refund, recorded `pending` before Razorpay is asked (its
  `X-Refund-Idempotency` key is the row's), then `processed` or `failed` as Razorpay says; the
  ledger's `refunded` row is written when it is processed.
- `payment_cod`: orders confirmed as cash on delivery, and when and by whom the cash was taken.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from kirana.api.db.base import Base, Timestamps, new_id, utcnow

LEDGER_KINDS = ("authorized", "captured", "refunded", "fee", "cod_collected")
PAYMENT_STATUSES = ("created", "authorized", "captured", "refunded", "failed")
REFUND_STATUSES = ("pending", "processed", "failed")
REFUND_SOURCES = ("staff", "auto", "razorpay")


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


class Refund(Timestamps, Base):
    """One refund of one payment. `idempotency_key` travels as `X-Refund-Idempotency`, so asking
    Razorpay again for a row (after a crash, by the reconciler) returns the same refund."""

    __tablename__ = "payment_refunds"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    razorpay_payment_id: Mapped[str] = mapped_column(String(40), index=True)
    # Null until Razorpay has answered for it.
    razorpay_refund_id: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    idempotency_key: Mapped[str] = mapped_column(String(60), unique=True)
    # The staff request (a hash of its Idempotency-Key) this row belongs to; null for others.
    request_key: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    source: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    # Staff said the goods came back: the stock goes back when the order becomes refunded.
    restock: Mapped[bool] = mapped_column(Boolean, default=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    failure_reason: Mapped[str | None] = mapped_column(String(200), default=None)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'processed', 'failed')", "status_known"),
        CheckConstraint("source IN ('staff', 'auto', 'razorpay')", "source_known"),
        CheckConstraint("amount_paise > 0", "amount_positive"),
        Index("ix_payment_refunds_pending", "created_at", postgresql_where=text("status = 'pending'")),
    )


class CashOnDelivery(Base):
    """An order confirmed as cash on delivery; `collected_at` is set once the cash is taken."""

    __tablename__ = "payment_cod"

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), primary_key=True
    )
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    pincode: Mapped[str] = mapped_column(String(10))
    confirmed_at: Mapped[datetime] = mapped_column(default=utcnow)
    collected_at: Mapped[datetime | None] = mapped_column(default=None)
    collected_by: Mapped[uuid.UUID | None] = mapped_column(default=None)

    __table_args__ = (CheckConstraint("amount_paise > 0", "amount_positive"),)
