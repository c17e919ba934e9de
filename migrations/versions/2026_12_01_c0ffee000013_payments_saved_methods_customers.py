"""payments: the Razorpay customer of each user with saved methods

Revision ID: c0ffee000013
Revises: c0ffee000012
Create Date: 2026-12-01 22:55:00

A new table only. Saved cards and UPI ids stay at Razorpay as tokens; the shop keeps the
customer id that owns them, never card data.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0ffee000013"
down_revision = "c0ffee000012"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {}


def upgrade() -> None:
    op.create_table(
        "payment_customers",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("razorpay_customer_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_payment_customers_user_id_users", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_payment_customers"),
        sa.UniqueConstraint("razorpay_customer_id", name="uq_payment_customers_razorpay_customer_id"),
    )


def downgrade() -> None:
    op.drop_table("payment_customers")
