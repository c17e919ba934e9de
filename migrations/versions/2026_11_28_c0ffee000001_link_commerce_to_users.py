"""link carts, orders and sync mutations to users; store managers cancel any order

Revision ID: c0ffee000001
Revises: b25fc7eb3893
Create Date: 2026-11-28 02:40:00

Foreign keys are added NOT VALID (a brief lock, no scan) and validated in a separate statement
that takes only a SHARE UPDATE EXCLUSIVE lock, so running traffic is never blocked.
"""

from __future__ import annotations

from alembic import op

revision = "c0ffee000001"
down_revision = "b25fc7eb3893"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {}

LINKS = [
    # table, column, ondelete
    ("carts", "user_id", "CASCADE"),
    ("orders", "user_id", "RESTRICT"),
    ("sync_mutations", "user_id", "CASCADE"),
]

GRANTS = [("store_manager", "orders:cancel_any")]


def _name(table: str, column: str) -> str:
    return f"fk_{table}_{column}_users"


def upgrade() -> None:
    for table, column, ondelete in LINKS:
        op.create_foreign_key(
            _name(table, column),
            table,
            "users",
            [column],
            ["id"],
            ondelete=ondelete,
            postgresql_not_valid=True,
        )
    for table, column, _ in LINKS:
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {_name(table, column)}")
    # Store managers may cancel any order in their scope ("orders:cancel" is a customer's right
    # to cancel their own).
    for role, permission in GRANTS:
        op.execute(
            f"UPDATE roles SET permissions = array_append(permissions, '{permission}') "
            f"WHERE name = '{role}' AND NOT ('{permission}' = ANY(permissions))"
        )


def downgrade() -> None:
    for role, permission in GRANTS:
        op.execute(
            f"UPDATE roles SET permissions = array_remove(permissions, '{permission}') WHERE name = '{role}'"
        )
    for table, column, _ in reversed(LINKS):
        op.drop_constraint(_name(table, column), table, type_="foreignkey")
