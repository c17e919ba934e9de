"""Refunds are privileged: staff without two-factor authentication cannot refund on either
route, `/refund` or a `refunded` transition (which checks the permission from the body)."""

from __future__ import annotations

import time
import uuid

from httpx import AsyncClient

from kirana.api.access.principal import Principal
from tests.integration.commerce.conftest import STAFF, Catalog, Login, customer, db, idem, login, shop

__all__ = ["db", "login", "shop"]  # fixtures, used by name


async def test_staff_without_2fa_cannot_refund_through_transitions(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await shop.product(sku="FAN-1", stock=2)
    await login(customer())
    r = await client.post("/v1/orders", json={"lines": [{"sku": "FAN-1", "quantity": 1}]}, headers=idem())
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    clerk = Principal(user_id=uuid.uuid4(), permissions=STAFF, two_factor_at=time.time())
    await login(clerk)
    for status in ("paid", "packed", "shipped", "out_for_delivery", "delivered"):
        r = await client.post(f"/v1/orders/{oid}/transitions", json={"status": status})
        assert r.status_code == 200, r.text
    # Refund rights and a fresh (password) step-up, but no 2FA enrolled: refused on both routes.
    await login(
        Principal(
            user_id=uuid.uuid4(),
            permissions=STAFF,
            two_factor_at=time.time(),
            extra={"needs_two_factor": "yes"},
        )
    )
    for path, body in (
        (f"/v1/orders/{oid}/refund", {}),
        (f"/v1/orders/{oid}/transitions", {"status": "refunded"}),
    ):
        r = await client.post(path, json=body, headers=idem())
        assert r.status_code == 403, (path, r.text)
        assert r.json()["reason"] == "two-factor-required"
    await login(clerk)
    r = await client.post(f"/v1/orders/{oid}/transitions", json={"status": "refunded"}, headers=idem())
    assert r.status_code == 200 and r.json()["status"] == "refunded"
