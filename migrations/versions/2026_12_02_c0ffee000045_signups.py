"""accounts: sign-ups waiting for the code sent to their email or phone

Revision ID: c0ffee000045
Revises: c0ffee000044
Create Date: 2026-12-02 06:00:00

A new table only. A replica of the previous release still creates accounts at once during the
rolling deploy; from this release on, a sign-up waits here for its code and the account is made
when one comes back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0ffee000045"
down_revision = "c0ffee000044"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {}


def upgrade() -> None:
    op.create_table(
        "signups",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("email_code_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("phone_code_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signups"),
        sa.UniqueConstraint("token_hash", name="uq_signups_token_hash"),
    )
    op.create_index("ix_signups_email", "signups", ["email"])
    op.create_index("ix_signups_phone", "signups", ["phone"])
    op.create_index("ix_signups_expires_at", "signups", ["expires_at"])


def downgrade() -> None:
    op.drop_table("signups")
