"""The public listing's response cache: how stale a page may be, and what is never cached."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from httpx import AsyncClient

from kirana.api.access.principal import Principal
from kirana.api.settings import Settings
from tests.integration.commerce.conftest import Catalog, customer, idem, staff

TTL = 1.5
URL = "/v1/catalog/products?category=grocery&in_stock=true"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"catalog_listing_cache_s": TTL})


def _skus_in_stock(body: dict[str, list[dict[str, object]]]) -> set[object]:
    return {item["slug"] for item in body["items"] if item["in_stock"]}


async def test_stock_sold_elsewhere_shows_within_the_ttl(
    client: AsyncClient, shop: Catalog, login: Callable[[Principal | None], Principal | None]
) -> None:
    view = await shop.product(sku="LAST-ONE", stock=1)
    slug = view.product.slug
    login(None)
    filled = time.monotonic()  # the cache entry is made after this...
    first = await client.get(URL)
    answered = time.monotonic()  # ...and before this
    assert first.status_code == 200 and slug in _skus_in_stock(first.json())
    login(customer())  # an order takes the last unit; orders do not empty the listing cache
    r = await client.post("/v1/orders", json={"lines": [{"sku": "LAST-ONE", "quantity": 1}]}, headers=idem())
    assert r.status_code == 201, r.text
    login(None)
    again = await client.get(URL)
    if time.monotonic() - filled < TTL:  # still within the bound: the same page, same ETag
        assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    revalidated = await client.get(URL, headers={"If-None-Match": first.headers["etag"]})
    assert revalidated.status_code in (200, 304)
    time.sleep(max(0.0, TTL - (time.monotonic() - answered)) + 0.1)
    fresh = await client.get(URL)
    assert fresh.status_code == 200 and slug not in _skus_in_stock(fresh.json())
    assert fresh.headers["etag"] != first.headers["etag"]
    r = await client.get(URL, headers={"If-None-Match": first.headers["etag"]})
    assert r.status_code == 200  # the old ETag no longer matches


async def test_a_catalog_write_on_this_process_shows_at_once(
    client: AsyncClient, shop: Catalog, login: Callable[[Principal | None], Principal | None]
) -> None:
    await shop.product(sku="DAL-5KG", stock=5, title="Toor Dal 5 kg")
    login(None)
    before = await client.get(URL)
    assert [i["title"] for i in before.json()["items"]] == ["Toor Dal 5 kg"]
    assert (await client.get(URL, headers={"If-None-Match": before.headers["etag"]})).status_code == 304
    login(staff())
    r = await client.post("/v1/catalog/variants/DAL-5KG/stock", json={"delta": -5})
    assert r.status_code == 200, r.text
    login(None)
    after = await client.get(URL)  # no waiting: this process's cache was emptied by the write
    assert after.json()["items"] == []
    assert (await client.get(URL, headers={"If-None-Match": before.headers["etag"]})).status_code == 200


async def test_drafts_are_never_served_from_or_into_the_public_cache(
    client: AsyncClient, shop: Catalog, login: Callable[[Principal | None], Principal | None]
) -> None:
    await shop.product(sku="LIVE-1", title="Live product")
    await shop.product(sku="DRAFT-1", title="Draft product", publish=False)
    url = "/v1/catalog/products?include_unpublished=true&sort=title"
    login(staff())
    assert [i["title"] for i in (await client.get(url)).json()["items"]] == ["Draft product", "Live product"]
    login(None)  # same URL, anonymous: drafts stay hidden (the staff page was not cached)
    assert [i["title"] for i in (await client.get(url)).json()["items"]] == ["Live product"]
    login(staff())  # and the anonymous page, now cached, is not what staff get
    assert [i["title"] for i in (await client.get(url)).json()["items"]] == ["Draft product", "Live product"]
