"""Roles (with parents and permissions) and what each user has been granted."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from kirana.api.db.base import Base, Timestamps, new_id


class Role(Timestamps, Base):
    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(String(300), server_default="")
    permissions: Mapped[list[str]] = mapped_column(ARRAY(String(100)), server_default=text("'{}'"))
    is_system: Mapped[bool] = mapped_column(server_default=text("false"))


class RoleParent(Base):
    """`role` inherits every permission of `parent`."""

    __tablename__ = "role_parents"

    role: Mapped[str] = mapped_column(
        ForeignKey("roles.name", ondelete="CASCADE", onupdate="CASCADE"), primary_key=True
    )
    parent: Mapped[str] = mapped_column(
        ForeignKey("roles.name", ondelete="CASCADE", onupdate="CASCADE"), primary_key=True
    )


class UserRole(Base):
    __tablename__ = "user_roles"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(ForeignKey("roles.name", ondelete="CASCADE", onupdate="CASCADE"))
    granted_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    granted_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (UniqueConstraint("user_id", "role"),)


class UserPermission(Base):
    """A permission given (`allow`) or taken away (`deny`) directly, beside the roles."""

    __tablename__ = "user_permissions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    permission: Mapped[str] = mapped_column(String(100))
    effect: Mapped[str] = mapped_column(String(5))
    granted_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    granted_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        UniqueConstraint("user_id", "permission", "effect"),
        CheckConstraint("effect IN ('allow', 'deny')", name="effect"),
    )


class UserScope(Base):
    """Limits a staff member to some stores or regions (`store:blr-1`, `region:south`)."""

    __tablename__ = "user_scopes"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(70), primary_key=True)
