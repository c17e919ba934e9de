"""Fixtures for payments tests: the fake Razorpay on a loopback port (reached by the real SDK),
settings pointing the shop at it, a customer with an order to pay, and webhook delivery.

Commerce fixtures (`login`, `shop`, `db`) come from tests/integration/commerce/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from kirana.api.devrazorpay.app import Delivery
from kirana.api.devrazorpay.server import FakeServer
from kirana.api.settings import Settings
from tests.integration.commerce.conftest import Catalog, customer, db, idem, login, shop  # noqa: F401

WEBHOOK_SECRET = "whsec-current-0123456789"
OLD_WEBHOOK_SECRET = "whsec-previous-0123456789"


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer(
        key_id="rzp_test_payments", key_secret="key-secret-for-tests", webhook_secret=WEBHOOK_SECRET
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path, fake: FakeServer) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path,
        drain_seconds=0,
        log_json=False,
        razorpay_key_id=fake.account.key_id,
        razorpay_key_secret=fake.account.key_secret,
        razorpay_webhook_secret=WEBHOOK_SECRET,
        razorpay_webhook_secret_previous=OLD_WEBHOOK_SECRET,
        razorpay_base_url=fake.base_url,
        razorpay_timeout_s=2.0,
        payments_retry_after_s=7,
    )


async def place(client: AsyncClient, sku: str, qty: int = 1) -> dict[str, Any]:
    r = await client.post("/v1/orders", json={"lines": [{"sku": sku, "quantity": qty}]}, headers=idem())
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def start(client: AsyncClient, order_id: str) -> dict[str, Any]:
    r = await client.post(f"/v1/orders/{order_id}/payments")
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def pay(fake: FakeServer, razorpay_order_id: str, **kw: Any) -> dict[str, str]:
    """What the customer's Checkout hands back after paying (signature included)."""
    p = fake.account.pay(razorpay_order_id, method=kw.pop("method", "card"), **kw)
    return {
        "razorpay_order_id": razorpay_order_id,
        "razorpay_payment_id": p["id"],
        "razorpay_signature": fake.account.checkout_signature(razorpay_order_id, p["id"]),
    }


async def deliver(client: AsyncClient, deliveries: list[Delivery]) -> list[int]:
    codes = []
    for d in deliveries:
        r = await client.post("/v1/webhooks/razorpay", content=d.body, headers=d.headers)
        codes.append(r.status_code)
    return codes
