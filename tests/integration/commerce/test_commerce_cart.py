"""Carts: guest tokens, user carts, re-pricing and availability on every read, merge at login."""

from __future__ import annotations

import uuid

from httpx import AsyncClient

from kirana.api.access.principal import Principal
from kirana.api.cart import service as carts
from kirana.api.db.engine import Database
from tests.integration.commerce.conftest import Catalog, Login, customer, staff

PROBLEM = "application/problem+json"


async def test_guest_cart_is_repriced_and_shows_availability(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await shop.product(sku="ATTA-5KG", price=29_900, mrp=32_000, stock=4, tax_class="gst_5")
    await login(None)
    created = await client.post("/v1/carts")
    assert created.status_code == 201
    token = created.json()["token"]
    h = {"X-Cart-Token": token}
    r = await client.post("/v1/cart/lines", json={"sku": "ATTA-5KG", "quantity": 3}, headers=h)
    assert r.status_code == 200, r.text
    cart = r.json()
    assert cart["total_paise"] == 89_700 and cart["savings_paise"] == 6_300
    assert cart["tax_paise"] == 4_271  # GST included in 89,700 at 5%
    assert cart["lines"][0]["availability"] == "ok" and cart["checkout_ready"] is True

    # Staff change the price and sell stock elsewhere: the next read says so.
    await login(staff())
    await client.patch("/v1/catalog/variants/ATTA-5KG", json={"price_paise": 31_000})
    await client.post("/v1/catalog/variants/ATTA-5KG/stock", json={"delta": -2})
    await login(None)
    cart = (await client.get("/v1/cart", headers=h)).json()
    line = cart["lines"][0]
    assert line["unit_price_paise"] == 31_000 and line["price_changed_from_paise"] == 29_900
    assert line["availability"] == "insufficient_stock" and line["available_quantity"] == 2
    assert cart["checkout_ready"] is False and cart["total_paise"] == 0

    # A client cannot name its own price.
    r = await client.post(
        "/v1/cart/lines", json={"sku": "ATTA-5KG", "quantity": 1, "price_paise": 1}, headers=h
    )
    assert r.status_code == 422
    # Someone else's token, or none, reaches no cart.
    assert (await client.get("/v1/cart", headers={"X-Cart-Token": "x" * 43})).status_code == 404
    assert (await client.get("/v1/cart")).status_code == 422


async def test_bad_cart_input_gets_a_clear_problem_and_changes_nothing(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await shop.product(sku="DAL-1", stock=100)
    await shop.product(sku="DRAFT-1", publish=False)
    await login(customer())
    await client.post("/v1/cart/lines", json={"sku": "DAL-1", "quantity": 2})
    cases = [
        ({"sku": "DAL-1", "quantity": 0}, 422, "validation-error"),
        ({"sku": "DAL-1", "quantity": -3}, 422, "validation-error"),
        ({"sku": "DAL-1", "quantity": 10**9}, 422, "validation-error"),
        ({"sku": "DAL-1", "quantity": 49}, 422, "invalid-input"),  # 2 + 49 > 50 per line
        ({"sku": "NOPE-404", "quantity": 1}, 422, "unknown-sku"),
        ({"sku": "lower-case", "quantity": 1}, 422, "validation-error"),
        ({"sku": "DRAFT-1", "quantity": 1}, 409, "not-sellable"),
        ({"sku": "DAL-1", "quantity": "two"}, 422, "validation-error"),
    ]
    for body, status, kind in cases:
        r = await client.post("/v1/cart/lines", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == PROBLEM and r.json()["type"].endswith(kind), (body, r.text)
    r = await client.post(
        "/v1/cart/lines", json={"sku": "DAL-1", "quantity": 1}, headers={"Idempotency-Key": "short"}
    )
    assert r.status_code == 422 and r.json()["type"].endswith("idempotency-key-malformed")
    cart = (await client.get("/v1/cart")).json()
    assert [(x["sku"], x["quantity"]) for x in cart["lines"]] == [("DAL-1", 2)]
    assert (await client.put("/v1/cart/lines/DAL-1", json={"quantity": 0})).status_code == 422
    assert (await client.put("/v1/cart/lines/DAL-1", json={"quantity": 7})).json()["item_count"] == 7
    assert (await client.delete("/v1/cart/lines/DAL-1")).json()["lines"] == []
    assert (await client.delete("/v1/cart/lines/DAL-1")).status_code == 404


async def test_customers_need_cart_use(client: AsyncClient, shop: Catalog, login: Login) -> None:
    await login(Principal(user_id=uuid.uuid4(), permissions=frozenset({"catalog:read"})))
    assert (await client.get("/v1/cart")).status_code == 403


async def test_guest_cart_merges_into_user_cart_at_login(
    client: AsyncClient, shop: Catalog, db: Database, login: Login
) -> None:
    await shop.product(sku="TEA-250", stock=100)
    await shop.product(sku="GHEE-1L", stock=100)
    await login(None)
    token = (await client.post("/v1/carts")).json()["token"]
    h = {"X-Cart-Token": token}
    await client.post("/v1/cart/lines", json={"sku": "TEA-250", "quantity": 2}, headers=h)
    await client.post("/v1/cart/lines", json={"sku": "GHEE-1L", "quantity": 45}, headers=h)
    me = await login(customer())
    assert me is not None
    await client.post("/v1/cart/lines", json={"sku": "GHEE-1L", "quantity": 10})

    async with db.session() as session:  # what the login flow calls
        merged = await carts.merge_guest_cart(session, guest_token=token, user_id=me.user_id)
    assert merged is not None
    async with db.session() as session:  # a second call (retried login) changes nothing
        again = await carts.merge_guest_cart(session, guest_token=token, user_id=me.user_id)
    assert again is not None and again.id == merged.id

    cart = (await client.get("/v1/cart")).json()
    assert {x["sku"]: x["quantity"] for x in cart["lines"]} == {"TEA-250": 2, "GHEE-1L": 50}  # capped at 50
    await login(None)
    assert (await client.get("/v1/cart", headers=h)).status_code == 404  # the guest cart is gone


async def test_merge_adopts_the_guest_cart_when_the_user_has_none(
    client: AsyncClient, shop: Catalog, db: Database, login: Login
) -> None:
    await shop.product(sku="RICE-5", stock=10)
    await login(None)
    token = (await client.post("/v1/carts")).json()["token"]
    await client.post(
        "/v1/cart/lines", json={"sku": "RICE-5", "quantity": 1}, headers={"X-Cart-Token": token}
    )
    me = await login(customer())
    assert me is not None
    r = await client.post("/v1/cart/merge", json={"guest_token": token})
    assert r.status_code == 200 and r.json()["lines"][0]["sku"] == "RICE-5"
    async with db.session() as session:
        assert (
            await carts.merge_guest_cart(session, guest_token="unknown-token-xyz", user_id=me.user_id)
            is not None
        )


async def test_first_carts_of_many_users_on_one_connection_are_created(db: Database) -> None:
    """The sixth execution of a prepared statement may use PostgreSQL's generic plan, where a
    bound `status = $n` can no longer be matched to the partial unique index named in
    ON CONFLICT; every new shopper after the fifth on a connection then got a 500 (seen in a
    load run)."""
    from tests.integration.commerce.conftest import ensure_user

    users = [uuid.uuid4() for _ in range(8)]
    for user_id in users:
        await ensure_user(db, user_id)
    async with db.session() as session:
        for user_id in users:
            cart = await carts.user_cart(session, user_id=user_id, create=True)
            assert cart is not None and cart.user_id == user_id
