"""loyalty: points ledger, accounts, order awards, redemptions, campaigns, achievements

Revision ID: c0ffee000030
Revises: c0ffee000020
Create Date: 2026-12-02 01:40:00

New tables only, plus three permissions added to system roles (support reads customers'
ledgers; store managers adjust points and manage campaigns). `loyalty_ledger` is append-only:
a trigger refuses UPDATE, DELETE and TRUNCATE, as the audit log's does. Old replicas never
read these tables, so the revision is safe while they still run.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0ffee000030"
down_revision = "c0ffee000020"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {
    "index-not-concurrent": "indexes of tables this revision creates, empty until loyalty runs",
}

TS = sa.DateTime(timezone=True)

GRANTS = {
    "support": ["loyalty:read_all"],
    "store_manager": ["loyalty:read_all", "loyalty:adjust", "loyalty:manage"],
}

GUARD_FUNCTION = """
CREATE FUNCTION kirana_loyalty_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'loyalty_ledger is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _fk(table: str, column: str, ref: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{ref}.id"], name=f"fk_{table}_{column}_{ref}", ondelete="RESTRICT"
    )


def upgrade() -> None:
    op.create_table(
        "loyalty_ledger",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("lot_id", sa.BigInteger(), nullable=True),
        sa.Column("store_code", sa.String(length=40), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("board_at", TS, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(
            "kind IN ('earn', 'redeem', 'release', 'expire', 'reverse', 'adjust')",
            name="ck_loyalty_ledger_kind_known",
        ),
        sa.CheckConstraint(
            "(kind IN ('earn', 'release') AND points > 0) OR "
            "(kind IN ('redeem', 'expire', 'reverse') AND points < 0) OR "
            "(kind = 'adjust' AND points <> 0)",
            name="ck_loyalty_ledger_sign_matches_kind",
        ),
        _fk("loyalty_ledger", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_ledger"),
        sa.UniqueConstraint("source", name="uq_loyalty_ledger_source"),
    )
    op.create_index("ix_loyalty_ledger_user", "loyalty_ledger", ["user_id", "id"])
    op.create_index(
        "ix_loyalty_ledger_board",
        "loyalty_ledger",
        ["board_at"],
        postgresql_where=sa.text("board_at IS NOT NULL"),
    )
    op.execute(GUARD_FUNCTION)
    op.execute(
        "CREATE TRIGGER loyalty_ledger_append_only BEFORE UPDATE OR DELETE ON loyalty_ledger "
        "FOR EACH ROW EXECUTE FUNCTION kirana_loyalty_ledger_append_only()"
    )
    op.execute(
        "CREATE TRIGGER loyalty_ledger_no_truncate BEFORE TRUNCATE ON loyalty_ledger "
        "FOR EACH STATEMENT EXECUTE FUNCTION kirana_loyalty_ledger_append_only()"
    )

    op.create_table(
        "loyalty_accounts",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("balance", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("debt", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("pending", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("tier", sa.String(length=12), server_default="bronze", nullable=False),
        sa.Column("spend_12m_paise", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("leaderboard_opt_out", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("updated_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("balance >= 0", name="ck_loyalty_accounts_balance_not_negative"),
        sa.CheckConstraint("debt >= 0", name="ck_loyalty_accounts_debt_not_negative"),
        sa.CheckConstraint("balance = 0 OR debt = 0", name="ck_loyalty_accounts_balance_or_debt"),
        sa.CheckConstraint("pending >= 0", name="ck_loyalty_accounts_pending_not_negative"),
        _fk("loyalty_accounts", "user_id", "users"),
        sa.PrimaryKeyConstraint("user_id", name="pk_loyalty_accounts"),
    )

    op.create_table(
        "loyalty_order_points",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("store_code", sa.String(length=40), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("spend_paise", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("paid_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'credited', 'reversed', 'void')",
            name="ck_loyalty_order_points_status_known",
        ),
        sa.CheckConstraint(
            "points >= 0 AND spend_paise >= 0", name="ck_loyalty_order_points_amounts_not_negative"
        ),
        _fk("loyalty_order_points", "order_id", "orders"),
        _fk("loyalty_order_points", "user_id", "users"),
        sa.PrimaryKeyConstraint("order_id", name="pk_loyalty_order_points"),
    )
    op.create_index("ix_loyalty_order_points_user_id", "loyalty_order_points", ["user_id"])

    op.create_table(
        "loyalty_redemptions",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("value_paise", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('held', 'applied', 'released')", name="ck_loyalty_redemptions_status_known"
        ),
        sa.CheckConstraint("points > 0 AND value_paise > 0", name="ck_loyalty_redemptions_amounts_positive"),
        _fk("loyalty_redemptions", "order_id", "orders"),
        _fk("loyalty_redemptions", "user_id", "users"),
        sa.PrimaryKeyConstraint("order_id", name="pk_loyalty_redemptions"),
    )
    op.create_index("ix_loyalty_redemptions_user_id", "loyalty_redemptions", ["user_id"])

    op.create_table(
        "loyalty_campaigns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("store_code", sa.String(length=40), nullable=True),
        sa.Column("category", sa.String(length=120), nullable=True),
        sa.Column("brand", sa.String(length=120), nullable=True),
        sa.Column("bonus_per_100_rupees", sa.Integer(), nullable=False),
        sa.Column("multiplier_percent", sa.Integer(), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(
            "ends_at IS NULL OR ends_at > starts_at", name="ck_loyalty_campaigns_ends_after_start"
        ),
        sa.CheckConstraint("bonus_per_100_rupees >= 0", name="ck_loyalty_campaigns_bonus_not_negative"),
        sa.CheckConstraint(
            "multiplier_percent BETWEEN 100 AND 1000", name="ck_loyalty_campaigns_multiplier_range"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_campaigns"),
    )
    op.create_index("ix_loyalty_campaigns_window", "loyalty_campaigns", ["starts_at", "ends_at"])

    op.create_table(
        "loyalty_achievements",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("progress", sa.BigInteger(), nullable=False),
        sa.Column("target", sa.BigInteger(), nullable=False),
        sa.Column("unlocked_at", TS, nullable=True),
        sa.Column("updated_at", TS, server_default=sa.text("now()"), nullable=False),
        _fk("loyalty_achievements", "user_id", "users"),
        sa.PrimaryKeyConstraint("user_id", "rule", name="pk_loyalty_achievements"),
    )

    for role, permissions in GRANTS.items():
        for permission in permissions:
            op.execute(
                sa.text(
                    "UPDATE roles SET permissions = array_append(permissions, :p) "
                    "WHERE name = :r AND NOT (:p = ANY(permissions))"
                ).bindparams(p=permission, r=role)
            )


def downgrade() -> None:
    for role, permissions in GRANTS.items():
        for permission in permissions:
            op.execute(
                sa.text(
                    "UPDATE roles SET permissions = array_remove(permissions, :p) WHERE name = :r"
                ).bindparams(p=permission, r=role)
            )
    op.drop_table("loyalty_achievements")
    op.drop_index("ix_loyalty_campaigns_window", table_name="loyalty_campaigns")
    op.drop_table("loyalty_campaigns")
    op.drop_index("ix_loyalty_redemptions_user_id", table_name="loyalty_redemptions")
    op.drop_table("loyalty_redemptions")
    op.drop_index("ix_loyalty_order_points_user_id", table_name="loyalty_order_points")
    op.drop_table("loyalty_order_points")
    op.drop_table("loyalty_accounts")
    op.execute("DROP TRIGGER IF EXISTS loyalty_ledger_no_truncate ON loyalty_ledger")
    op.execute("DROP TRIGGER IF EXISTS loyalty_ledger_append_only ON loyalty_ledger")
    op.drop_index("ix_loyalty_ledger_board", table_name="loyalty_ledger")
    op.drop_index("ix_loyalty_ledger_user", table_name="loyalty_ledger")
    op.drop_table("loyalty_ledger")
    op.execute("DROP FUNCTION IF EXISTS kirana_loyalty_ledger_append_only()")
