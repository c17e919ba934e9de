"""orders: a partial index of unpaid orders by customer, for the unpaid-order caps

Revision ID: c0ffee000042
Revises: c0ffee00de11
Create Date: 2026-12-02 03:00:00

Placement reads a customer's unpaid orders (at most the cap's number) for every order it places
(`orders.unpaid`). Through `ix_orders_user_created` that walks all the customer's orders, paid
ones too; this index holds unpaid orders only (awaiting payment, or confirmed for cash on
delivery), so it stays small. Built CONCURRENTLY, outside a
transaction: writes to `orders` go on while it builds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0ffee000042"
down_revision = "c0ffee00de11"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_orders_unpaid_user",
            "orders",
            ["user_id"],
            postgresql_where=sa.text("status IN ('pending_payment', 'confirmed')"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_orders_unpaid_user", "orders", postgresql_concurrently=True, if_exists=True)
