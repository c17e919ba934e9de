"""Accounts tables: users, sessions (refresh-token families), refresh tokens, reset tokens, keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from kirana.api.db.base import Base, Timestamps, new_id


class User(Timestamps, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)  # normalised, lower case
    phone: Mapped[str | None] = mapped_column(String(16), unique=True)  # E.164
    name: Mapped[str] = mapped_column(String(200), server_default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    sms_2fa_enabled: Mapped[bool] = mapped_column(server_default=text("false"))
    # Bumped by every change to what this user may do (grants, sessions, 2FA); the per-process
    # permission cache keeps one entry per (user, grants_version).
    grants_version: Mapped[int] = mapped_column(server_default=text("1"))
    password_changed_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (CheckConstraint("email IS NOT NULL OR phone IS NOT NULL", name="has_identifier"),)


class AuthSession(Base):
    """One signed-in device: the family of its refresh tokens."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoke_reason: Mapped[str | None] = mapped_column(String(50), default=None)
    # Last strong authentication in this session (2FA, or the password for accounts without
    # 2FA) for step-up checks.
    two_factor_at: Mapped[datetime | None] = mapped_column(default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(300), default=None)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class PasswordResetToken(Base):
    __tablename__ = "password_reset_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class SigningKey(Base):
    """An Ed25519 key that signs access tokens until `sign_until` and verifies them until
    `verify_until` (sign_until + the longest access-token lifetime)."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    private_key: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted (SecretBox)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime]
    sign_until: Mapped[datetime]
    verify_until: Mapped[datetime]

    __table_args__ = (Index("ix_signing_keys_verify_until", "verify_until"),)


class ContactChange(Base):
    """A new email or phone waiting for proof: the code sent to it (hashed), one per kind."""

    __tablename__ = "contact_changes"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # email | phone
    value: Mapped[str] = mapped_column(String(320))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Signup(Base):
    """A sign-up waiting for proof that its email or phone receives messages (`accounts.signups`).

    Not an account: no sign-in identifier is taken until a code comes back, so a sign-up
    with somebody else's address blocks nobody (several may name one address; the first
    confirmed takes it and the others' claims on it are dropped). Its id becomes the account's.
    """

    __tablename__ = "signups"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # sha256 of the secret token the registering client holds: a code confirms only with it
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(16), index=True)
    # sha256 of (id, kind, code); NULL until the worker has sent the code
    email_code_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)
    phone_code_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)
    password_hash: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), server_default="")
    failures: Mapped[int] = mapped_column(server_default=text("0"))  # wrong codes so far
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
