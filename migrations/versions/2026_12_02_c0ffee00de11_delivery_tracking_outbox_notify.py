"""delivery: agents, assignments, positions; the outbox wakes its relay with NOTIFY

Revision ID: c0ffee00de11
Revises: c0ffee000014
Create Date: 2026-12-02 01:55:00

New tables `deliveries` and `delivery_positions`. A new system role `delivery_agent`
(`deliveries:track`, `deliveries:complete`); `store_manager` gains `deliveries:assign` and
`deliveries:read_all`, `support` gains `deliveries:read_all` (the roles table is a handful of
rows). A statement-level trigger on `outbox_events` calls `pg_notify('kirana_outbox', '')`,
delivered at commit, so the workers' relay wakes at once instead of polling; CREATE TRIGGER
takes a brief SHARE ROW EXCLUSIVE lock on the outbox and scans nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0ffee00de11"
down_revision = "c0ffee000014"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {}

AGENT = ["deliveries:track", "deliveries:complete"]
GAINS = {"store_manager": ["deliveries:assign", "deliveries:read_all"], "support": ["deliveries:read_all"]}


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("store_code", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("assigned_by", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=True),
        sa.Column("dest_lat", sa.Float(), nullable=True),
        sa.Column("dest_lng", sa.Float(), nullable=True),
        sa.Column("last_lat", sa.Float(), nullable=True),
        sa.Column("last_lng", sa.Float(), nullable=True),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("eta_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('assigned', 'en_route', 'delivered', 'failed', 'cancelled')",
            name="ck_deliveries_status_known",
        ),
        sa.CheckConstraint(
            "dest_lat BETWEEN -90 AND 90 AND dest_lng BETWEEN -180 AND 180",
            name="ck_deliveries_dest_on_earth",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_deliveries_order_id_orders", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name="fk_deliveries_agent_id_users", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
    )
    op.create_index("ix_deliveries_order_id", "deliveries", ["order_id"])
    op.create_index("ix_deliveries_agent_status", "deliveries", ["agent_id", "status"])
    op.create_index(
        "uq_deliveries_active_order",
        "deliveries",
        ["order_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('assigned', 'en_route')"),
    )
    op.create_table(
        "delivery_positions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lng", sa.Float(), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "lat BETWEEN -90 AND 90 AND lng BETWEEN -180 AND 180", name="ck_delivery_positions_on_earth"
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name="fk_delivery_positions_delivery_id_deliveries",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_positions"),
    )
    op.create_index("ix_delivery_positions_delivery_id", "delivery_positions", ["delivery_id", "id"])
    op.create_index("ix_delivery_positions_received_at", "delivery_positions", ["received_at"])

    roles = sa.table(
        "roles",
        sa.column("name", sa.String),
        sa.column("description", sa.String),
        sa.column("permissions", sa.ARRAY(sa.String)),
        sa.column("is_system", sa.Boolean),
    )
    op.bulk_insert(
        roles,
        [
            {
                "name": "delivery_agent",
                "description": "Delivers orders: their assignments, live position, proof of delivery",
                "permissions": AGENT,
                "is_system": True,
            }
        ],
    )
    for role, perms in GAINS.items():
        listed = ", ".join(f"'{p}'" for p in perms)
        op.execute(
            f"UPDATE roles SET permissions = permissions || ARRAY[{listed}]::varchar(100)[] WHERE name = '{role}'"
        )

    op.execute(
        """
        CREATE FUNCTION kirana_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('kirana_outbox', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION kirana_notify_outbox()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS outbox_events_notify ON outbox_events")
    op.execute("DROP FUNCTION IF EXISTS kirana_notify_outbox()")
    for role, perms in GAINS.items():
        for perm in perms:
            op.execute(
                f"UPDATE roles SET permissions = array_remove(permissions, '{perm}') WHERE name = '{role}'"
            )
    op.execute("DELETE FROM user_roles WHERE role = 'delivery_agent'")
    op.execute("DELETE FROM roles WHERE name = 'delivery_agent'")
    op.drop_table("delivery_positions")
    op.drop_table("deliveries")
