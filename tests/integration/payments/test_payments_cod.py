"""Cash on delivery: confirmed without payment under the limit and where it is offered, stock held
without a timer, the cash recorded at the door as one ledger row, everything audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api.db.base import utcnow
from kirana.api.orders import service as orders
from kirana.api.payments import ledger_check
from kirana.api.settings import Settings
from tests.integration.commerce.conftest import STAFF, Catalog, customer, idem, staff
from tests.integration.payments.test_payments_checkout import q

ADDRESS = {
    "name": "Asha",
    "phone": "+919812345678",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "state": "Karnataka",
    "pincode": "560001",
}
DELIVERY = STAFF | {"orders:update_status"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"payments_cod_limit_paise": 2_000_00, "payments_cod_pincodes": "5600, 110001"}
    )


async def place(
    client: AsyncClient, sku: str, qty: int = 1, address: dict[str, Any] | None = ADDRESS
) -> dict:
    body: dict[str, Any] = {"lines": [{"sku": sku, "quantity": qty}]}
    if address:
        body["shipping_address"] = address
    r = await client.post("/v1/orders", json=body, headers=idem())
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_cod_is_confirmed_then_settled_by_the_cash_at_the_door(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, database_url: str
) -> None:
    await shop.product(sku="RICE-5KG", price=60_000, stock=3)
    await login(customer())
    order = await place(client, "RICE-5KG")
    r = await client.post(f"/v1/orders/{order['id']}/payments/cod")
    assert r.status_code == 201, r.text
    assert r.json() | {"order_id": None} == {
        "order_id": None,
        "order_status": "confirmed",
        "amount_paise": order["total_paise"],
        "currency": "INR",
        "collected": False,
        "paid_paise": 0,
    }
    again = await client.post(f"/v1/orders/{order['id']}/payments/cod")
    assert again.status_code == 201 and again.json()["order_status"] == "confirmed"
    assert q(database_url, "SELECT count(*) FROM payment_cod") == [(1,)]
    # The stock stays held with no reservation timer: the expiry job passes it by.
    async with app.state.db.session() as s:
        assert await orders.expire_due(s, now=utcnow() + timedelta(days=3)) == 0
    assert q(database_url, "SELECT stock FROM catalog_variants WHERE sku = 'RICE-5KG'") == [(2,)]
    # Nor can it be paid online any more.
    assert (await client.post(f"/v1/orders/{order['id']}/payments")).status_code == 409

    await login(staff(permissions=DELIVERY))
    path = f"/v1/orders/{order['id']}/payments/cod/collected"
    r = await client.post(path, json={"amount_paise": order["total_paise"]})
    assert r.status_code == 409  # not at the door yet
    for status in ("packed", "shipped", "out_for_delivery"):
        t = await client.post(
            f"/v1/orders/{order['id']}/transitions", json={"status": status}, headers=idem()
        )
        assert t.status_code == 200, t.text
    r = await client.post(path, json={"amount_paise": order["total_paise"] - 100})
    assert r.status_code == 422 and r.json()["type"].endswith("/cod-amount-mismatch")
    r = await client.post(path, json={"amount_paise": order["total_paise"]})
    assert r.status_code == 200, r.text
    assert (r.json()["order_status"], r.json()["collected"], r.json()["paid_paise"]) == (
        "delivered",
        True,
        order["total_paise"],
    )
    again = await client.post(path, json={"amount_paise": order["total_paise"]})
    assert again.status_code == 200
    assert q(database_url, "SELECT kind, amount_paise, reference FROM payment_ledger") == [
        ("cod_collected", order["total_paise"], f"cod:{order['id']}")
    ]
    async with app.state.db.session() as s:
        assert await ledger_check.verify_ledger(s) == []
    actions = q(database_url, "SELECT action FROM audit_log WHERE action LIKE 'payments.cod%%' ORDER BY seq")
    assert actions == [("payments.cod_confirmed",), ("payments.cod_collected",)]
    topics = q(database_url, "SELECT payload->>'method' FROM outbox_events WHERE topic = 'payment.succeeded'")
    assert topics == [("cod",)]


async def test_cod_limits_pincodes_and_address(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, database_url: str
) -> None:
    await shop.product(sku="DAL-1KG", price=15_000, stock=50)
    await login(customer())
    big = await place(client, "DAL-1KG", qty=20)  # ₹3,000 > the ₹2,000 limit
    r = await client.post(f"/v1/orders/{big['id']}/payments/cod")
    assert r.status_code == 422 and r.json()["type"].endswith("/cod-limit-exceeded")
    assert r.json()["limit_paise"] == 2_000_00
    far = await place(client, "DAL-1KG", address=ADDRESS | {"pincode": "400001"})
    r = await client.post(f"/v1/orders/{far['id']}/payments/cod")
    assert r.status_code == 409 and r.json()["type"].endswith("/cod-unavailable")
    assert (r.json()["reason"], r.json()["pincode"]) == ("pincode", "400001")
    delhi = await place(client, "DAL-1KG", address=ADDRESS | {"pincode": "110001"})
    assert (await client.post(f"/v1/orders/{delhi['id']}/payments/cod")).status_code == 201
    nowhere = await place(client, "DAL-1KG", address=None)
    r = await client.post(f"/v1/orders/{nowhere['id']}/payments/cod")
    assert r.status_code == 409 and r.json()["reason"] == "no_address"
    # Someone else's order is not found.
    await login(customer())
    assert (await client.post(f"/v1/orders/{far['id']}/payments/cod")).status_code == 404
    assert q(database_url, "SELECT status, count(*) FROM orders GROUP BY status ORDER BY status") == [
        ("confirmed", 1),
        ("pending_payment", 3),
    ]


async def test_a_delivered_cod_order_without_cash_is_reported(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, database_url: str
) -> None:
    await shop.product(sku="TEA-250G", price=12_000, stock=5)
    await login(customer())
    order = await place(client, "TEA-250G")
    assert (await client.post(f"/v1/orders/{order['id']}/payments/cod")).status_code == 201
    q(database_url, "UPDATE orders SET status = 'delivered' WHERE id = %s", order["id"])
    async with app.state.db.session() as s:
        found = await ledger_check.verify_ledger(s)
    assert [f["problem"] for f in found] == ["delivered cash on delivery, but no cash is recorded"]
