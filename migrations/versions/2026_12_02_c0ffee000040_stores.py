"""stores: the table of store codes an order may name

Revision ID: c0ffee000040
Revises: c0ffee000021
Create Date: 2026-12-02 02:00:00

A new table only, filled with the store `main` (the default store code), every code that
orders already carry and every store a staff scope names, so no existing order, scope or
client breaks. There is no foreign key from `orders.store_code` yet: replicas of the previous
release, which do not check codes, keep placing orders during the rolling deploy. A later
revision can add it as NOT VALID and validate it once no such replica is left.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0ffee000040"
down_revision = "c0ffee000021"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {}


def upgrade() -> None:
    op.create_table(
        "stores",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_stores"),
    )
    op.execute(
        """
        INSERT INTO stores (code, name)
        SELECT code, initcap(replace(code, '-', ' ')) FROM (
            SELECT 'main' AS code
            UNION SELECT DISTINCT store_code FROM orders
            UNION SELECT DISTINCT substr(scope, 7) FROM user_scopes WHERE scope LIKE 'store:_%'
        ) known
        WHERE length(code) BETWEEN 1 AND 40
        ON CONFLICT (code) DO NOTHING
        """
    )


def downgrade() -> None:
    op.drop_table("stores")
