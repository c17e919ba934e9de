"""accounts: contact changes waiting for the code sent to the new address

Revision ID: c0ffee000041
Revises: c0ffee000040
Create Date: 2026-12-02 02:45:00

A new table only. A replica of the previous release still changes email and phone at once
during the rolling deploy; from this release on, a change waits here for its code.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0ffee000041"
down_revision = "c0ffee000040"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {}


def upgrade() -> None:
    op.create_table(
        "contact_changes",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_contact_changes_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "kind", name="pk_contact_changes"),
    )


def downgrade() -> None:
    op.drop_table("contact_changes")
