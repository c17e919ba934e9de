"""Two-factor tables: each user's TOTP credential and their single-use recovery codes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from kirana.api.db.base import Base, new_id


class TotpCredential(Base):
    __tablename__ = "totp_credentials"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)  # base32 seed, encrypted (SecretBox)
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    # The last accepted time step: a code is accepted once, and never one older than it.
    last_used_step: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256 (SecretBox.mac)
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
