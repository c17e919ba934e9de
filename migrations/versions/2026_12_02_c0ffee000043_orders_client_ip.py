"""orders: the client address of each order, for the per-address cap of unpaid orders

Revision ID: c0ffee000043
Revises: c0ffee000042
Create Date: 2026-12-02 05:40:00

A nullable column (no rewrite, no default) and a partial index of unpaid orders by address,
built CONCURRENTLY outside a transaction so writes to `orders` go on while it builds. A replica
of the previous release writes no address during the rolling deploy; its orders are simply not
counted by address.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "c0ffee000043"
down_revision = "c0ffee000042"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {}


def upgrade() -> None:
    op.add_column("orders", sa.Column("client_ip", postgresql.INET(), nullable=True))
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_orders_unpaid_client_ip",
            "orders",
            ["client_ip"],
            postgresql_where=sa.text("client_ip IS NOT NULL AND status IN ('pending_payment', 'confirmed')"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_orders_unpaid_client_ip", "orders", postgresql_concurrently=True, if_exists=True)
    op.drop_column("orders", "client_ip")
