"""Order tables: orders, their lines (a price snapshot) and the status history.

Each order belongs to a user (`user_id`, no FK until access control merges) and a store
(`store_code`, which staff scopes `store:<code>` refer to). `order_events` records every status
change with who made it and when.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, Sequence, String, Text, text
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from kirana.api.db.base import Base, Timestamps, new_id, utcnow

ORDER_NUMBER_SEQ = Sequence("order_number_seq", start=100001)

STATUSES = (
    "pending_payment",
    "confirmed",
    "paid",
    "packed",
    "shipped",
    "out_for_delivery",
    "delivered",
    "cancelled",
    "expired",
    "refunded",
)


class Order(Timestamps, Base):
    __tablename__ = "orders"
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    number: Mapped[int] = mapped_column(
        BigInteger, ORDER_NUMBER_SEQ, server_default=ORDER_NUMBER_SEQ.next_value(), unique=True
    )
    # RESTRICT: an account with orders is deactivated, never deleted (orders are records).
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    store_code: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(24))
    currency: Mapped[str] = mapped_column(String(3), default="INR")
    subtotal_paise: Mapped[int] = mapped_column(BigInteger)
    mrp_total_paise: Mapped[int] = mapped_column(BigInteger)
    tax_paise: Mapped[int] = mapped_column(BigInteger)
    total_paise: Mapped[int] = mapped_column(BigInteger)
    # The part of the total paid otherwise than in money (loyalty points held on the order):
    # payments charge `due_paise`. Set only while the order waits for payment, before paying starts.
    discount_paise: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    item_count: Mapped[int] = mapped_column(Integer)
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    reservation_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    # The client's global address at placement, when known (`orders.unpaid.known_ip`): the
    # per-address cap of unpaid orders counts by it.
    client_ip: Mapped[str | None] = mapped_column(INET, default=None)

    @property
    def due_paise(self) -> int:
        """What is paid in money: the total less what loyalty points pay."""
        return self.total_paise - (self.discount_paise or 0)

    __table_args__ = (
        CheckConstraint(
            "status IN ('pending_payment', 'confirmed', 'paid', 'packed', 'shipped', "
            "'out_for_delivery', 'delivered', 'cancelled', 'expired', 'refunded')",
            "status_known",
        ),
        CheckConstraint("total_paise >= 0", "total_not_negative"),
        CheckConstraint("discount_paise >= 0 AND discount_paise <= total_paise", "discount_within_total"),
        Index("ix_orders_user_created", "user_id", text("created_at DESC")),
        Index("ix_orders_store_created", "store_code", text("created_at DESC")),
        Index(
            "ix_orders_unpaid_user",
            "user_id",
            postgresql_where=text("status IN ('pending_payment', 'confirmed')"),
        ),
        Index(
            "ix_orders_unpaid_client_ip",
            "client_ip",
            postgresql_where=text("client_ip IS NOT NULL AND status IN ('pending_payment', 'confirmed')"),
        ),
        Index(
            "ix_orders_reservations_due",
            "reservation_expires_at",
            postgresql_where=text("status = 'pending_payment'"),
        ),
    )


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_variants.id", ondelete="RESTRICT"), index=True
    )
    product_id: Mapped[uuid.UUID] = mapped_column()
    sku: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_paise: Mapped[int] = mapped_column(BigInteger)
    unit_mrp_paise: Mapped[int] = mapped_column(BigInteger)
    tax_rate_percent: Mapped[int] = mapped_column(Integer)
    tax_paise: Mapped[int] = mapped_column(BigInteger)
    line_total_paise: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (CheckConstraint("quantity > 0", "quantity_positive"),)


class OrderEvent(Base):
    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    actor_kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (CheckConstraint("actor_kind IN ('customer', 'staff', 'system')", "actor_kind_known"),)
