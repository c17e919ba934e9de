"""Cart tables. A cart belongs to a user (`user_id`) or to a guest (the hash of its token).

The guest token itself is never stored, only its SHA-256, so a database leak does not hand out
carts. One active cart per user is enforced by a partial unique index.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from kirana.api.db.base import Base, Timestamps, new_id, utcnow

ACTIVE = "active"
MERGED = "merged"
CONVERTED = "converted"


class Cart(Timestamps, Base):
    __tablename__ = "carts"
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # No foreign key to users: access control owns that table; the FK is added after the merge.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, default=None
    )
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)

    __table_args__ = (
        CheckConstraint("status IN ('active', 'merged', 'converted')", "status_known"),
        Index(
            "uq_carts_one_active_per_user",
            "user_id",
            unique=True,
            postgresql_where=text("status = 'active' AND user_id IS NOT NULL"),
        ),
    )


class CartLine(Base):
    __tablename__ = "cart_lines"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    cart_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_variants.id", ondelete="CASCADE"), index=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    # The price the shopper saw when adding, so a read can say "price changed from ... to ...".
    price_at_add_paise: Mapped[int] = mapped_column(BigInteger)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("cart_id", "variant_id"),
        CheckConstraint("quantity > 0", "quantity_positive"),
    )
