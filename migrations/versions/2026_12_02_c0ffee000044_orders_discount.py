"""orders: discount_paise, the part of the total loyalty points pay

Revision ID: c0ffee000044
Revises: c0ffee000043
Create Date: 2026-12-02 06:00:00

Payments charge `total_paise - discount_paise`. The column has a constant default, so adding
it rewrites nothing; its check is added NOT VALID (no scan under the exclusive lock): every
existing row holds 0, which passes it, and new rows are checked as usual. Replicas of the
previous release never write it (it stays 0 for their orders).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0ffee000044"
down_revision = "c0ffee000043"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "orders", sa.Column("discount_paise", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
    )
    op.create_check_constraint(
        op.f("ck_orders_discount_within_total"),
        "orders",
        "discount_paise >= 0 AND discount_paise <= total_paise",
        postgresql_not_valid=True,
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_orders_discount_within_total"), "orders", type_="check")
    op.drop_column("orders", "discount_paise")
