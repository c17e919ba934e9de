"""Delivery tables: one row per attempt to bring an order to its customer, and its positions.

A `Delivery` is created when staff assign an order to an agent and ends delivered (the
customer's one-time code confirmed), failed (an attempt that did not reach the customer) or
cancelled (the order was given to another agent). At most one delivery per order is active
(`assigned` or `en_route`), which a partial unique index keeps. `DeliveryPosition` holds the
agent's recent positions (pruned after `KIRANA_DELIVERY_POSITION_RETENTION_S` by
`delivery.scheduled.prune_positions`); the delivery row keeps the latest one and the ETA.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from kirana.api.db.base import Base, Timestamps, new_id

STATUSES = ("assigned", "en_route", "delivered", "failed", "cancelled")
ACTIVE = ("assigned", "en_route")


class Delivery(Timestamps, Base):
    __tablename__ = "deliveries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    # The order's customer and store, copied: the socket's channel check reads one row.
    user_id: Mapped[uuid.UUID] = mapped_column()
    store_code: Mapped[str] = mapped_column(String(40))
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    assigned_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16), default="assigned")
    # The proof of delivery the customer reads out; cleared once the delivery ends.
    code: Mapped[str | None] = mapped_column(String(8), default=None)
    dest_lat: Mapped[float | None] = mapped_column(Float, default=None)
    dest_lng: Mapped[float | None] = mapped_column(Float, default=None)
    last_lat: Mapped[float | None] = mapped_column(Float, default=None)
    last_lng: Mapped[float | None] = mapped_column(Float, default=None)
    last_at: Mapped[datetime | None] = mapped_column(default=None)
    eta_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    failure_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        CheckConstraint(
            "status IN ('assigned', 'en_route', 'delivered', 'failed', 'cancelled')", "status_known"
        ),
        CheckConstraint("dest_lat BETWEEN -90 AND 90 AND dest_lng BETWEEN -180 AND 180", "dest_on_earth"),
        Index(
            "uq_deliveries_active_order",
            "order_id",
            unique=True,
            postgresql_where=text("status IN ('assigned', 'en_route')"),
        ),
        Index("ix_deliveries_agent_status", "agent_id", "status"),
    )


class DeliveryPosition(Base):
    __tablename__ = "delivery_positions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    lat: Mapped[float] = mapped_column(Float)
    lng: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float, default=None)
    recorded_at: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("lat BETWEEN -90 AND 90 AND lng BETWEEN -180 AND 180", "on_earth"),
        Index("ix_delivery_positions_delivery_id", "delivery_id", "id"),
        Index("ix_delivery_positions_received_at", "received_at"),
    )
