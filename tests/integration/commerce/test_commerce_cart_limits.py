"""The cart's line limit holds on every way into an order: merge at sign-in, checkout, sync push
and "buy now" (a review merged a 100-line cart with a 30-line guest cart and placed 130 lines)."""

from __future__ import annotations

import uuid

import pytest
from httpx import AsyncClient
from sqlalchemy import select

from kirana.api.cart import service as carts
from kirana.api.cart.models import CartLine
from kirana.api.catalog.models import Variant
from kirana.api.db.engine import Database
from kirana.api.settings import Settings
from tests.integration.commerce.conftest import Catalog, Login, customer, idem

MAX_LINES = 3
SKUS = ["LIM-A", "LIM-B", "LIM-C", "LIM-D"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"cart_max_lines": MAX_LINES})


async def _stock(shop: Catalog) -> None:
    for sku in SKUS:
        await shop.product(sku=sku, price=1_000, stock=100)


async def _overfull_cart(db: Database, user_id: uuid.UUID) -> None:
    """A cart holding more items than the limit (made before the limit was lowered)."""
    async with db.session() as session:
        cart = await carts.user_cart(session, user_id=user_id, create=True)
        assert cart is not None
        for sku in SKUS:
            variant = await session.scalar(select(Variant).where(Variant.sku == sku))
            assert variant is not None
            session.add(
                CartLine(cart_id=cart.id, variant_id=variant.id, quantity=1, price_at_add_paise=1_000)
            )


async def test_merge_adds_new_items_only_while_the_cart_has_room(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await _stock(shop)
    await login(None)
    token = (await client.post("/v1/carts")).json()["token"]
    for sku in ["LIM-B", "LIM-C", "LIM-D"]:
        r = await client.post(
            "/v1/cart/lines", json={"sku": sku, "quantity": 2}, headers={"X-Cart-Token": token}
        )
        assert r.status_code == 200, r.text
    await login(customer())
    for sku in ["LIM-A", "LIM-B"]:
        assert (await client.post("/v1/cart/lines", json={"sku": sku, "quantity": 1})).status_code == 200
    r = await client.post("/v1/cart/merge", json={"guest_token": token})
    assert r.status_code == 200, r.text
    lines = {x["sku"]: x["quantity"] for x in r.json()["lines"]}
    assert lines == {"LIM-A": 1, "LIM-B": 3, "LIM-C": 2}  # LIM-D found no room


async def test_checkout_refuses_a_cart_over_the_line_limit(
    client: AsyncClient, shop: Catalog, db: Database, login: Login
) -> None:
    await _stock(shop)
    me = await login(customer())
    assert me is not None
    await _overfull_cart(db, me.user_id)
    r = await client.post("/v1/checkout", json={}, headers=idem())
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["max_lines"] == MAX_LINES


async def test_buy_now_refuses_more_lines_than_the_limit(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await _stock(shop)
    await login(customer())
    body = {"lines": [{"sku": sku, "quantity": 1} for sku in SKUS]}
    r = await client.post("/v1/orders", json=body, headers=idem())
    assert r.status_code == 422, r.text
    assert r.json()["max_lines"] == MAX_LINES


async def test_sync_push_refuses_an_order_over_the_line_limit(
    client: AsyncClient, shop: Catalog, db: Database, login: Login
) -> None:
    await _stock(shop)
    me = await login(customer())
    assert me is not None
    await _overfull_cart(db, me.user_id)
    push = {"mutations": [{"client_mutation_id": str(uuid.uuid4()), "type": "order.place"}]}
    r = await client.post("/v1/sync/push", json=push)
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    assert (result["status"], result["reason"]) == ("rejected", "invalid-input")
    assert result["data"]["max_lines"] == MAX_LINES
