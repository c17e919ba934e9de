"""payments: refunds with their status, cash on delivery, and the order status `confirmed`

Revision ID: c0ffee000014
Revises: c0ffee000041
Create Date: 2026-12-02 02:00:00

Two new tables, and the orders' status check widened by one value (`confirmed`, an order to be
paid in cash at the door). Widening is safe in a rolling deploy: the old code never writes the
new value, and the new code's values all pass the old check except `confirmed`, which only COD
writes; the wider check is added NOT VALID (existing rows passed the narrower one). Refunds
already in the ledger are copied in as processed, so totals stay as they were.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0ffee000014"
down_revision = "c0ffee000041"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {}

TS = sa.DateTime(timezone=True)
OLD_STATUSES = (
    "status IN ('pending_payment', 'paid', 'packed', 'shipped', 'out_for_delivery', "
    "'delivered', 'cancelled', 'expired', 'refunded')"
)
NEW_STATUSES = (
    "status IN ('pending_payment', 'confirmed', 'paid', 'packed', 'shipped', "
    "'out_for_delivery', 'delivered', 'cancelled', 'expired', 'refunded')"
)


def upgrade() -> None:
    op.create_table(
        "payment_refunds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("razorpay_payment_id", sa.String(length=40), nullable=False),
        sa.Column("razorpay_refund_id", sa.String(length=40), nullable=True),
        sa.Column("idempotency_key", sa.String(length=60), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=True),
        sa.Column("amount_paise", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("restock", sa.Boolean(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("failure_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'processed', 'failed')", name="ck_payment_refunds_status_known"
        ),
        sa.CheckConstraint("source IN ('staff', 'auto', 'razorpay')", name="ck_payment_refunds_source_known"),
        sa.CheckConstraint("amount_paise > 0", name="ck_payment_refunds_amount_positive"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_payment_refunds_order_id_orders", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_payment_refunds"),
        sa.UniqueConstraint("razorpay_refund_id", name="uq_payment_refunds_razorpay_refund_id"),
        sa.UniqueConstraint("idempotency_key", name="uq_payment_refunds_idempotency_key"),
    )
    op.create_index("ix_payment_refunds_order_id", "payment_refunds", ["order_id"])
    op.create_index("ix_payment_refunds_razorpay_payment_id", "payment_refunds", ["razorpay_payment_id"])
    op.create_index("ix_payment_refunds_request_key", "payment_refunds", ["request_key"])
    op.create_index(
        "ix_payment_refunds_pending",
        "payment_refunds",
        ["created_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.execute(
        """
        INSERT INTO payment_refunds (id, order_id, razorpay_payment_id, razorpay_refund_id,
            idempotency_key, amount_paise, currency, status, source, restock)
        SELECT gen_random_uuid(), order_id, razorpay_payment_id, substr(reference, 8),
            'ledger-' || substr(reference, 8), amount_paise, currency, 'processed', 'razorpay', false
        FROM payment_ledger
        WHERE kind = 'refunded' AND razorpay_payment_id IS NOT NULL AND reference LIKE 'refund:%'
        """
    )
    op.create_table(
        "payment_cod",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("amount_paise", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("pincode", sa.String(length=10), nullable=False),
        sa.Column("confirmed_at", TS, nullable=False),
        sa.Column("collected_at", TS, nullable=True),
        sa.Column("collected_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint("amount_paise > 0", name="ck_payment_cod_amount_positive"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_payment_cod_order_id_orders", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("order_id", name="pk_payment_cod"),
    )
    # NOT VALID: no scan of orders under the exclusive lock. Every existing row passed the old,
    # narrower check, so it passes this one; new rows are checked as usual.
    op.drop_constraint(op.f("ck_orders_status_known"), "orders", type_="check")
    op.create_check_constraint(
        op.f("ck_orders_status_known"), "orders", NEW_STATUSES, postgresql_not_valid=True
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_orders_status_known"), "orders", type_="check")
    op.create_check_constraint(
        op.f("ck_orders_status_known"), "orders", OLD_STATUSES, postgresql_not_valid=True
    )
    op.drop_table("payment_cod")
    op.drop_table("payment_refunds")
