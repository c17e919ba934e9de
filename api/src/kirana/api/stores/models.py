"""The stores table: every code an order may name.

An order's `store_code` used to be any string the client sent. It is now checked against this
table at placement (`orders.placement`); `orders.store_code` has no foreign key to it yet, so
replicas of the previous release can keep writing during a rolling deploy.
"""

from __future__ import annotations

from sqlalchemy import Boolean, String, text
from sqlalchemy.orm import Mapped, mapped_column

from kirana.api.db.base import Base, Timestamps


class Store(Timestamps, Base):
    __tablename__ = "stores"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # A closed store takes no new orders; its old orders and staff scopes stay.
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
