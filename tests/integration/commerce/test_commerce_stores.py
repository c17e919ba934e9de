"""An order names a store from the stores table, or none (the default store); any other code
is refused with a problem+json that names it, on every way into an order."""

from __future__ import annotations

import uuid

from httpx import AsyncClient

from kirana.api.db.engine import Database
from kirana.api.stores.models import Store
from tests.integration.commerce.conftest import Catalog, Login, customer, idem


async def test_an_unknown_store_code_is_refused_and_a_known_one_accepted(
    client: AsyncClient, shop: Catalog, db: Database, login: Login
) -> None:
    await shop.product(sku="STORE-1", stock=10)
    async with db.session() as session:
        session.add(Store(code="pune-1", name="Pune 1"))
        session.add(Store(code="closed-1", name="Closed", is_active=False))
    await login(customer())
    line = [{"sku": "STORE-1", "quantity": 1}]
    for code in ("nowhere", "closed-1"):
        r = await client.post("/v1/orders", json={"lines": line, "store_code": code}, headers=idem())
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["type"].endswith("/unknown-store") and body["store_code"] == code
    for code, expected in (("pune-1", "pune-1"), ("main", "main"), (None, "main")):
        extra = {"store_code": code} if code else {}
        r = await client.post("/v1/orders", json={"lines": line, **extra}, headers=idem())
        assert r.status_code == 201, r.text
        assert r.json()["store_code"] == expected

    assert (await client.post("/v1/cart/lines", json={"sku": "STORE-1", "quantity": 1})).status_code == 200
    r = await client.post("/v1/checkout", json={"store_code": "nowhere"}, headers=idem())
    assert r.status_code == 422 and r.json()["type"].endswith("/unknown-store"), r.text
    push = {
        "mutations": [{"client_mutation_id": str(uuid.uuid4()), "type": "order.place", "store_code": "x-1"}]
    }
    (result,) = (await client.post("/v1/sync/push", json=push)).json()["results"]
    assert (result["status"], result["reason"]) == ("rejected", "unknown-store")
    r = await client.post("/v1/checkout", json={"store_code": "pune-1"}, headers=idem())
    assert r.status_code == 201, r.text
