"""payments: Razorpay checkouts, payments, the money ledger, webhook events

Revision ID: c0ffee000012
Revises: c0ffee000002
Create Date: 2026-12-01 22:30:00

New tables only (no lock on existing ones beyond the foreign keys' brief SHARE ROW EXCLUSIVE
on `orders`, which they reference while empty).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "c0ffee000012"
down_revision = "c0ffee000002"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {}

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payment_checkouts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("razorpay_order_id", sa.String(length=40), nullable=False),
        sa.Column("amount_paise", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_payment_checkouts_order_id_orders", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_payment_checkouts"),
        sa.UniqueConstraint("order_id", name="uq_payment_checkouts_order_id"),
        sa.UniqueConstraint("razorpay_order_id", name="uq_payment_checkouts_razorpay_order_id"),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("razorpay_payment_id", sa.String(length=40), nullable=False),
        sa.Column("razorpay_order_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("amount_paise", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("failure_reason", sa.String(length=60), nullable=True),
        sa.Column("flag", sa.String(length=40), nullable=True),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('created', 'authorized', 'captured', 'refunded', 'failed')",
            name="ck_payments_status_known",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_payments_order_id_orders", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_payments"),
        sa.UniqueConstraint("razorpay_payment_id", name="uq_payments_razorpay_payment_id"),
    )
    op.create_index("ix_payments_razorpay_order_id", "payments", ["razorpay_order_id"])
    op.create_index("ix_payments_order_id", "payments", ["order_id"])
    op.create_index("ix_payments_flagged", "payments", ["flag"], postgresql_where=sa.text("flag IS NOT NULL"))
    op.create_table(
        "payment_ledger",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("razorpay_payment_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_paise", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(
            "kind IN ('authorized', 'captured', 'refunded', 'fee', 'cod_collected')",
            name="ck_payment_ledger_kind_known",
        ),
        sa.CheckConstraint("amount_paise >= 0", name="ck_payment_ledger_amount_not_negative"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_payment_ledger_order_id_orders", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_payment_ledger"),
        sa.UniqueConstraint("reference", name="uq_payment_ledger_reference"),
    )
    op.create_index("ix_payment_ledger_order_id", "payment_ledger", ["order_id"])
    op.create_index("ix_payment_ledger_razorpay_payment_id", "payment_ledger", ["razorpay_payment_id"])
    op.create_table(
        "payment_webhook_events",
        sa.Column("event_id", sa.String(length=60), nullable=False),
        sa.Column("event", sa.String(length=60), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("processed_at", TS, nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("flag", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_payment_webhook_events"),
    )
    op.create_index(
        "ix_payment_webhook_events_due",
        "payment_webhook_events",
        ["received_at"],
        postgresql_where=sa.text("processed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("payment_webhook_events")
    op.drop_table("payment_ledger")
    op.drop_table("payments")
    op.drop_table("payment_checkouts")
