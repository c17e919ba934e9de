"""A shopper's whole journey across domains with real sign-in tokens (no dependency overrides):
guest cart -> sign in with the cart token -> checkout -> own orders only -> staff in scope."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.integration.access.helpers import login, make_user
from tests.integration.commerce.conftest import Catalog


@pytest.fixture
async def shop(app: FastAPI) -> Catalog:
    c = Catalog(app.state.db)
    await c.category("grocery")
    return c


async def test_guest_cart_follows_the_shopper_through_sign_in_to_an_order(
    app: FastAPI, client: AsyncClient, shop: Catalog
) -> None:
    await shop.product(sku="DAL-1KG", price=14_500, mrp=16_000, stock=10)
    await shop.product(sku="GHEE-500", price=32_000, stock=3)

    guest = (await client.post("/v1/carts")).json()["token"]
    cart_h = {"X-Cart-Token": guest}
    assert (
        await client.post("/v1/cart/lines", json={"sku": "DAL-1KG", "quantity": 2}, headers=cart_h)
    ).is_success

    asha = await make_user(app)
    r = await client.post(
        "/v1/auth/login", json={"identifier": asha.email, "password": "correct-horse-battery"}, headers=cart_h
    )
    assert r.status_code == 200, r.text
    asha_h = {"Authorization": f"Bearer {r.json()['access_token']}"}

    cart = (await client.get("/v1/cart", headers=asha_h)).json()
    assert [(ln["sku"], ln["quantity"]) for ln in cart["lines"]] == [("DAL-1KG", 2)]
    assert (await client.get("/v1/cart", headers=cart_h)).status_code == 404  # guest cart is gone

    assert (
        await client.post("/v1/cart/lines", json={"sku": "GHEE-500", "quantity": 1}, headers=asha_h)
    ).is_success
    order = await client.post(
        "/v1/checkout",
        json={"store_code": "blr-1", "expected_total_paise": 2 * 14_500 + 32_000},
        headers=asha_h | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]
    assert order.json()["status"] == "pending_payment"
    assert order.json()["total_paise"] == 61_000

    # Another customer cannot see it; Asha can.
    ravi = await login(client, await make_user(app))
    assert (await client.get(f"/v1/orders/{order_id}", headers=ravi.headers)).status_code == 404
    assert (await client.get(f"/v1/orders/{order_id}", headers=asha_h)).status_code == 200
    mine = (await client.get("/v1/orders", headers=asha_h)).json()
    assert [o["id"] for o in mine["items"]] == [order_id]


async def test_unauthenticated_checkout_is_401_problem(client: AsyncClient) -> None:
    r = await client.post("/v1/checkout", json={}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"


async def test_a_signed_in_customer_never_sees_draft_products(
    app: FastAPI, client: AsyncClient, shop: Catalog
) -> None:
    """Customers hold catalog:read (the shop window); drafts need catalog:write."""
    draft = await shop.product(sku="SECRET-LAUNCH", publish=False)
    asha = await login(client, await make_user(app))
    listing = await client.get(
        "/v1/catalog/products", params={"include_unpublished": "true"}, headers=asha.headers
    )
    assert listing.status_code == 200
    assert "SECRET-LAUNCH" not in listing.text
    page = await client.get(f"/v1/catalog/products/{draft.product.slug}", headers=asha.headers)
    assert page.status_code == 404

    manager = await login(client, await make_user(app, roles=("catalog_manager",)))
    staff_listing = await client.get(
        "/v1/catalog/products", params={"include_unpublished": "true"}, headers=manager.headers
    )
    assert any(p["slug"] == draft.product.slug for p in staff_listing.json()["items"])


async def test_the_documented_demo_accounts_can_sign_in(app: FastAPI, client: AsyncClient) -> None:
    """README promises these credentials after `make run`; they must work."""
    from sqlalchemy import create_engine

    from kirana.api.accounts import seed as accounts_seed
    from kirana.api.db.urls import sync_url

    engine = create_engine(sync_url(app.state.settings.database_url))
    try:
        with engine.begin() as conn:
            assert accounts_seed.demo_accounts(conn) > 0
        with engine.begin() as conn:
            assert accounts_seed.demo_accounts(conn) == 0  # idempotent: every start may call it
    finally:
        engine.dispose()
    for email, password in (
        ("asha@example.com", "kirana-customer-demo"),
        ("owner@example.com", "kirana-owner-demo"),
    ):
        r = await client.post("/v1/auth/login", json={"identifier": email, "password": password})
        assert r.status_code == 200, r.text


def _cursor(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        {"cursor": _cursor({"s": "newest", "k": "2030-01-01T00:00:00+00:00", "i": 5})},  # id not a UUID
        {"sort": "price_asc", "cursor": _cursor({"s": "price_asc", "k": 10**20, "i": str(uuid.uuid4())})},
        {"sort": "price_asc", "cursor": _cursor({"s": "price_asc", "k": True, "i": str(uuid.uuid4())})},
    ],
)
async def test_forged_catalog_cursors_are_422_not_500(client: AsyncClient, query: dict[str, str]) -> None:
    r = await client.get("/v1/catalog/products", params=query)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_forged_order_cursor_is_422_not_500(app: FastAPI, client: AsyncClient) -> None:
    asha = await login(client, await make_user(app))
    r = await client.get(
        "/v1/orders", params={"cursor": _cursor(["2030-01-01T00:00:00+00:00", 5])}, headers=asha.headers
    )
    assert r.status_code == 422, r.text
