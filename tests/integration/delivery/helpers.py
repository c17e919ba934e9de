"""Orders ready for delivery, inserted with SQL, and small REST helpers for the delivery tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from kirana.api.db.urls import sync_url
from kirana.api.orders.models import Order
from kirana.api.payments.models import CashOnDelivery

BLR = (12.9716, 77.5946)  # the drop point used by the tests (central Bengaluru)


def packed_order(
    database_url: str, user_id: uuid.UUID, *, store: str = "blr-1", cod_paise: int | None = None
) -> uuid.UUID:
    """A paid and packed order of `user_id` (lines do not matter to delivery); with `cod_paise`,
    one packed to be paid in cash at the door, that amount due."""
    engine = create_engine(sync_url(database_url))
    try:
        with Session(engine) as session, session.begin():
            order = Order(
                user_id=user_id,
                store_code=store,
                status="packed",
                subtotal_paise=10_000,
                mrp_total_paise=12_000,
                tax_paise=500,
                total_paise=10_000,
                item_count=1,
                paid_at=None if cod_paise is not None else datetime.now(UTC),
            )
            session.add(order)
            session.flush()
            if cod_paise is not None:
                cash = {"amount_paise": cod_paise, "currency": "INR", "pincode": "560001"}
                session.add(CashOnDelivery(order_id=order.id, **cash))
            return order.id
    finally:
        engine.dispose()


def call(base: str, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=30) as client:
        return client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
