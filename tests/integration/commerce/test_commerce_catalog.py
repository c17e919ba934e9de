"""Catalog as shoppers and staff see it: CRUD behind permissions, listing, pagination, ETags."""

from __future__ import annotations

from httpx import AsyncClient

from tests.integration.commerce.conftest import Catalog, Login, customer, idem, staff

PROBLEM = "application/problem+json"

PRODUCT = {
    "slug": "toor-dal-1kg",
    "title": "Desi Farms Toor Dal",
    "category": "grocery",
    "variants": [
        {
            "sku": "DAL-1KG",
            "price_paise": 15_900,
            "mrp_paise": 18_000,
            "tax_class": "gst_0",
            "stock": 5,
            "attributes": {"pack": "1 kg"},
        },
        {
            "sku": "DAL-500G",
            "price_paise": 8_500,
            "mrp_paise": 9_000,
            "tax_class": "gst_0",
            "stock": 0,
            "attributes": {"pack": "500 g"},
        },
    ],
}


async def test_staff_crud_needs_catalog_write(client: AsyncClient, shop: Catalog, login: Login) -> None:
    await login(None)
    assert (await client.post("/v1/catalog/products", json=PRODUCT)).status_code == 401
    await login(customer())
    r = await client.post("/v1/catalog/products", json=PRODUCT)
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    await login(staff())
    r = await client.post("/v1/catalog/products", json=PRODUCT)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["is_published"] is False
    assert body["price_paise"] == 8_500 and body["in_stock"] is True

    # Drafts are invisible to shoppers until published.
    await login(None)
    assert (await client.get("/v1/catalog/products/toor-dal-1kg")).status_code == 404
    await login(staff())
    assert (await client.post("/v1/catalog/products/toor-dal-1kg/publish")).status_code == 200
    await login(None)
    r = await client.get("/v1/catalog/products/toor-dal-1kg")
    assert r.status_code == 200
    assert [v["sku"] for v in r.json()["variants"]] == ["DAL-1KG", "DAL-500G"]
    assert r.json()["variants"][0]["discount_percent"] == 11

    await login(staff())
    r = await client.patch("/v1/catalog/variants/DAL-1KG", json={"price_paise": 14_900})
    assert r.status_code == 200
    r = await client.post("/v1/catalog/variants/DAL-1KG/stock", json={"delta": -6})
    assert r.status_code == 409 and r.json()["stock"] == 5
    assert (await client.post("/v1/catalog/variants/DAL-1KG/stock", json={"delta": 10})).json()["stock"] == 15

    assert (await client.post("/v1/catalog/products/toor-dal-1kg/unpublish")).status_code == 200
    await login(None)
    assert (await client.get("/v1/catalog/products/toor-dal-1kg")).status_code == 404


async def test_bad_catalog_input_is_rejected_with_nothing_written(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await login(staff())
    above_mrp = {**PRODUCT, "variants": [{**PRODUCT["variants"][0], "price_paise": 20_000}]}  # type: ignore[dict-item]
    r = await client.post("/v1/catalog/products", json=above_mrp)
    assert r.status_code == 422 and "MRP" in r.text
    dup = {**PRODUCT, "variants": [PRODUCT["variants"][0], PRODUCT["variants"][0]]}  # type: ignore[index]
    assert (await client.post("/v1/catalog/products", json=dup)).status_code == 422
    bad_tax = {**PRODUCT, "variants": [{**PRODUCT["variants"][0], "tax_class": "vat_12"}]}  # type: ignore[dict-item]
    assert (await client.post("/v1/catalog/products", json=bad_tax)).status_code == 422
    # A taken SKU fails the whole product: no half-created product remains.
    await shop.product(sku="DAL-500G")
    r = await client.post("/v1/catalog/products", json=PRODUCT)
    assert r.status_code == 409 and r.json()["skus"] == ["DAL-500G"]
    assert (await client.get("/v1/catalog/products/toor-dal-1kg")).status_code == 404


async def test_listing_filters_sorts_and_pages_without_gaps(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await shop.category("dal", parent="grocery")
    await shop.category("apparel")
    await shop.brand("desi-farms")
    cheap = await shop.product(title="Moong Dal", price=5_000, category="dal", brand="desi-farms")
    await shop.product(title="Chana Dal", price=7_000, category="dal", stock=0)
    kurta = await shop.product(
        title="Cotton Kurta",
        category="apparel",
        variants=[
            {
                "sku": "KURTA-M-RED",
                "price_paise": 99_900,
                "mrp_paise": 129_900,
                "stock": 3,
                "tax_class": "gst_5",
                "attributes": {"size": "M", "colour": "Red"},
            },
            {
                "sku": "KURTA-L-BLUE",
                "price_paise": 109_900,
                "mrp_paise": 129_900,
                "stock": 0,
                "tax_class": "gst_5",
                "attributes": {"size": "L", "colour": "Blue"},
            },
        ],
    )
    await shop.product(title="Hidden Draft", category="dal", publish=False)
    await login(None)

    async def titles(**params: object) -> list[str]:
        r = await client.get("/v1/catalog/products", params=params)  # type: ignore[arg-type]
        assert r.status_code == 200, r.text
        return [i["title"] for i in r.json()["items"]]

    assert set(await titles(category="grocery")) == {"Moong Dal", "Chana Dal"}  # includes the subtree
    assert await titles(brand="desi-farms") == ["Moong Dal"]
    assert await titles(category="dal", in_stock="true") == ["Moong Dal"]
    assert await titles(min_price_paise=6_000, max_price_paise=8_000) == ["Chana Dal"]
    assert await titles(sort="price_asc") == ["Moong Dal", "Chana Dal", "Cotton Kurta"]
    assert await titles(sort="price_desc") == ["Cotton Kurta", "Chana Dal", "Moong Dal"]
    # Attribute filters and stock hold for the same variant: L is out of stock, M is not.
    assert await titles(attr="size:L", in_stock="true") == []
    assert await titles(attr=["size:L", "size:M"], in_stock="true") == ["Cotton Kurta"]
    assert await titles(attr="colour:Blue") == ["Cotton Kurta"]
    assert "Hidden Draft" not in await titles(limit=100)
    assert cheap.product.slug and kurta.product.slug

    # Keyset pagination walks every product once, whatever the sort.
    for _ in range(7):
        await shop.product(price=5_000)  # equal prices: ties broken by id
    for sort in ("newest", "price_asc", "price_desc", "title"):
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, object] = {"sort": sort, "limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/v1/catalog/products", params=params)).json()  # type: ignore[arg-type]
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == 10, sort

    r = await client.get("/v1/catalog/products", params={"cursor": "not-a-cursor"})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    first = (await client.get("/v1/catalog/products", params={"sort": "price_asc", "limit": 1})).json()
    r = await client.get("/v1/catalog/products", params={"sort": "title", "cursor": first["next_cursor"]})
    assert r.status_code == 422 and "sort" in r.json()["detail"]
    assert (await client.get("/v1/catalog/products", params={"attr": "nocolon"})).status_code == 422
    assert (await client.get("/v1/catalog/products", params={"limit": 1000})).status_code == 422
    assert (await client.get("/v1/catalog/products", params={"category": "nope"})).status_code == 404


async def test_product_reads_support_etag_revalidation(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    view = await shop.product(sku="ETAG-1", stock=5)
    await login(None)
    url = f"/v1/catalog/products/{view.product.slug}"
    first = await client.get(url)
    etag = first.headers["etag"]
    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    # Stock moves: the representation changes, so the old ETag no longer matches.
    await login(staff())
    await client.post("/v1/catalog/variants/ETAG-1/stock", json={"delta": 1})
    await login(None)
    changed = await client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["variants"][0]["stock"] == 6


async def test_category_tree_and_guarded_deletes(client: AsyncClient, shop: Catalog, login: Login) -> None:
    await shop.category("dal", parent="grocery")
    await shop.product(category="dal")
    await login(None)
    tree = (await client.get("/v1/catalog/categories")).json()
    assert tree[0]["slug"] == "grocery" and tree[0]["children"][0]["path"] == "grocery/dal"
    await login(staff())
    assert (await client.delete("/v1/catalog/categories/grocery")).status_code == 409
    assert (await client.delete("/v1/catalog/categories/dal")).status_code == 409
    r = await client.post("/v1/catalog/categories", json={"slug": "dal", "name": "Again"})
    assert r.status_code == 409


async def test_an_ordered_product_is_kept_for_order_history_and_an_unordered_one_goes(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    ordered = await shop.product(sku="KEEP-1", stock=5)
    unordered = await shop.product(sku="GONE-1", stock=5)
    await login(customer())
    r = await client.post("/v1/orders", json={"lines": [{"sku": "KEEP-1", "quantity": 1}]}, headers=idem())
    assert r.status_code == 201, r.text
    await login(staff())
    r = await client.delete(f"/v1/catalog/products/{ordered.product.slug}")
    assert r.status_code == 409 and "order history" in r.json()["detail"]
    assert (await client.get(f"/v1/catalog/products/{ordered.product.slug}")).status_code == 200
    assert (await client.delete(f"/v1/catalog/products/{unordered.product.slug}")).status_code == 204
    assert (await client.get(f"/v1/catalog/products/{unordered.product.slug}")).status_code == 404


async def test_stock_changes_only_by_delta_so_reservations_are_never_double_counted(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await shop.product(sku="OIL-1L", stock=10)
    await login(staff())
    r = await client.patch("/v1/catalog/variants/OIL-1L", json={"stock": 50})
    assert r.status_code == 422
    assert any(e["field"].endswith("stock") for e in r.json()["errors"])
    r = await client.post("/v1/catalog/variants/OIL-1L/stock", json={"delta": 40})
    assert r.status_code == 200, r.text
