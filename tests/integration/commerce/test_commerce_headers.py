"""What the document promises of created resources and conditional reads: a 201 names what it
made in `Location` (and a replay names the same), and a product or listing answered with an
`ETag` is answered 304, without a body, to an `If-None-Match` that names it."""

from __future__ import annotations

from httpx import AsyncClient

from tests.integration.commerce.conftest import STAFF, Catalog, Login, customer, idem, staff


async def test_a_created_product_and_a_checkout_say_where_they_are(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await shop.product(sku="GHEE-500", price=32_000, stock=5)  # its category and brand exist now
    await login(staff(permissions=STAFF))
    body = {
        "slug": "rock-salt-1kg",
        "title": "Rock salt 1 kg",
        "category": "grocery",
        "variants": [{"sku": "SALT-1KG", "price_paise": 4_000, "mrp_paise": 4_500, "tax_class": "gst_5"}],
        "publish": True,
    }
    r = await client.post("/v1/catalog/products", json=body)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/catalog/products/{r.json()['id']}"
    assert (await client.get(r.headers["location"])).json()["slug"] == "rock-salt-1kg"

    await login(customer())
    await client.post("/v1/cart/lines", json={"sku": "GHEE-500", "quantity": 1})
    key = idem()
    r = await client.post("/v1/checkout", json={}, headers=key)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/orders/{r.json()['id']}"
    assert (await client.get(r.headers["location"])).json()["id"] == r.json()["id"]
    again = await client.post("/v1/checkout", json={}, headers=key)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == r.headers["location"]  # stored with the answer


async def test_an_etag_named_in_if_none_match_is_answered_304(client: AsyncClient, shop: Catalog) -> None:
    product = await shop.product(sku="JEERA-100", price=9_000, stock=5)
    for path in (f"/v1/catalog/products/{product.product.id}", "/v1/catalog/products?limit=5"):
        first = await client.get(path)
        assert first.status_code == 200 and first.headers["etag"].startswith('"')
        same = await client.get(path, headers={"If-None-Match": f'"other", {first.headers["etag"]}'})
        assert same.status_code == 304 and same.content == b""
        assert same.headers["etag"] == first.headers["etag"]
        other = await client.get(path, headers={"If-None-Match": '"not-this-one"'})
        assert other.status_code == 200 and other.content == first.content
