"""The public listing's response cache: every committed catalog change empties it at once (in
this process or any other), it is bypassed while changes cannot be followed, drafts are never
cached, and cached hits answered before routing are the route's own answers."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api.catalog.listing_cache import ListingCache
from kirana.api.db.urls import libpq_url
from kirana.api.settings import Settings
from tests.integration.access.helpers import login as login_account
from tests.integration.access.helpers import make_user
from tests.integration.commerce.conftest import Catalog, Login, customer, idem, staff
from tests.integration.commerce.notified import kill_listener, settled, until

TTL = 600.0  # freshness must come from notifications, never from waiting this out
URL = "/v1/catalog/products?category=grocery&in_stock=true"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"catalog_listing_cache_s": TTL})


def _in_stock(body: dict[str, list[dict[str, object]]]) -> set[object]:
    return {item["slug"] for item in body["items"] if item["in_stock"]}


def _cache(app: FastAPI) -> ListingCache:
    cache: ListingCache = app.state.catalog_listing_cache
    return cache


async def test_a_change_committed_elsewhere_empties_the_cache_at_once(
    app: FastAPI, client: AsyncClient, shop: Catalog, settings: Settings
) -> None:
    view = await shop.product(sku="LAST-ONE", stock=1)
    slug = view.product.slug
    await settled(app, settings)
    first = await client.get(URL)
    assert first.status_code == 200 and slug in _in_stock(first.json())
    again = await client.get(URL)  # cached: the same page, the same ETag
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert _cache(app).hits >= 1
    seen = _cache(app).invalidations
    # Another process (here a plain connection, as a job or psql would) sells the last unit.
    with psycopg.connect(libpq_url(settings.database_url), autocommit=True) as conn:
        conn.execute("UPDATE catalog_variants SET stock = 0 WHERE sku = 'LAST-ONE'")
    waited = await until(lambda: _cache(app).invalidations > seen)
    assert waited < 1.0
    fresh = await client.get(URL)
    assert fresh.status_code == 200 and slug not in _in_stock(fresh.json())
    r = await client.get(URL, headers={"If-None-Match": first.headers["etag"]})
    assert r.status_code == 200  # the old ETag no longer matches


async def test_an_order_taking_the_last_unit_shows_at_once(
    app: FastAPI,
    client: AsyncClient,
    shop: Catalog,
    settings: Settings,
    login: Login,
) -> None:
    view = await shop.product(sku="LAST-ONE", stock=1)
    await shop.product(sku="PLENTY", stock=100)
    await settled(app, settings)
    first = await client.get(URL)
    assert view.product.slug in _in_stock(first.json())
    await login(customer())
    seen = _cache(app).invalidations
    r = await client.post("/v1/orders", json={"lines": [{"sku": "PLENTY", "quantity": 1}]}, headers=idem())
    assert r.status_code == 201, r.text
    await asyncio.sleep(0.2)
    assert _cache(app).invalidations == seen  # stock that stays above zero changes no listing
    r = await client.post("/v1/orders", json={"lines": [{"sku": "LAST-ONE", "quantity": 1}]}, headers=idem())
    assert r.status_code == 201, r.text
    await until(lambda: _cache(app).invalidations > seen)
    await login(None)
    assert view.product.slug not in _in_stock((await client.get(URL)).json())


async def test_a_catalog_write_on_this_process_shows_at_once(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await shop.product(sku="DAL-5KG", stock=5, title="Toor Dal 5 kg")
    await login(None)
    before = await client.get(URL)
    assert [i["title"] for i in before.json()["items"]] == ["Toor Dal 5 kg"]
    assert (await client.get(URL, headers={"If-None-Match": before.headers["etag"]})).status_code == 304
    await login(staff())
    r = await client.post("/v1/catalog/variants/DAL-5KG/stock", json={"delta": -5})
    assert r.status_code == 200, r.text
    await login(None)
    after = await client.get(URL)  # no waiting: this process's cache was emptied by the write
    assert after.json()["items"] == []
    assert (await client.get(URL, headers={"If-None-Match": before.headers["etag"]})).status_code == 200


async def test_a_lost_listening_connection_bypasses_the_cache_until_it_is_back(
    app: FastAPI, client: AsyncClient, shop: Catalog, settings: Settings
) -> None:
    await shop.product(sku="DAL-5KG", stock=5, title="Toor Dal 5 kg")
    await settled(app, settings)
    cache = _cache(app)
    assert cache.followed
    await client.get(URL)
    with psycopg.connect(libpq_url(settings.database_url), autocommit=True) as conn:
        kill_listener(conn)
        await until(lambda: not cache.followed)
        # While nobody listens, a change is not heard of: every request must read the database.
        conn.execute("UPDATE catalog_products SET title = 'Toor Dal 5 kg (new)'")
        hits = cache.hits
        assert [i["title"] for i in (await client.get(URL)).json()["items"]] == ["Toor Dal 5 kg (new)"]
        assert cache.hits == hits
    await until(lambda: cache.followed)  # reconnected, with an empty cache
    await client.get(URL)
    hits = cache.hits
    assert (await client.get(URL)).json()["items"][0]["title"] == "Toor Dal 5 kg (new)"
    assert cache.hits == hits + 1


async def test_cached_hits_answer_like_the_route(
    app: FastAPI, client: AsyncClient, shop: Catalog, settings: Settings
) -> None:
    await shop.product(sku="DAL-5KG", stock=5, title="Toor Dal 5 kg")
    await settled(app, settings)
    miss = await client.get(URL, headers={"X-Request-ID": "miss-1"})
    hit = await client.get(URL, headers={"X-Request-ID": "hit-1"})
    assert hit.status_code == miss.status_code == 200
    assert hit.content == miss.content
    for name in ("etag", "cache-control", "content-type", "content-length"):
        assert hit.headers[name] == miss.headers[name], name
    assert hit.headers["x-request-id"] == "hit-1"  # the request-context middleware still applies
    not_modified = await client.get(URL, headers={"If-None-Match": f'"x", W/{hit.headers["etag"]}'})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == hit.headers["etag"]
    # A bearer token is checked as the route checks it, even for a cached page.
    for header in ("Bearer not-a-token", "Basic dXNlcjpwdw==", "Bearer "):
        bad = await client.get(URL, headers={"Authorization": header})
        assert bad.status_code == 401 and bad.headers["content-type"] == "application/problem+json"
    account = await login_account(client, await make_user(app))
    # Of repeated headers the first counts, as for the route: an expired token first is refused.
    twice = [("Authorization", "Bearer not-a-token"), ("Authorization", account.headers["Authorization"])]
    assert (await client.get(URL, headers=twice)).status_code == 401
    hits = _cache(app).hits
    signed_in = await client.get(URL, headers=account.headers)
    assert signed_in.content == miss.content and _cache(app).hits == hits + 1
    await client.post("/v1/auth/logout", headers=account.headers)
    gone = await client.get(URL, headers=account.headers)  # a signed-out session is refused
    assert gone.status_code == 401
    # An invalid query never reaches the cache, so it is never answered from it.
    assert (await client.get("/v1/catalog/products?limit=0")).status_code == 422


async def test_drafts_are_never_served_from_or_into_the_public_cache(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await shop.product(sku="LIVE-1", title="Live product")
    await shop.product(sku="DRAFT-1", title="Draft product", publish=False)
    url = "/v1/catalog/products?include_unpublished=true&sort=title"
    await login(staff())
    assert [i["title"] for i in (await client.get(url)).json()["items"]] == ["Draft product", "Live product"]
    await login(None)  # same URL, anonymous: drafts stay hidden (the staff page was not cached)
    assert [i["title"] for i in (await client.get(url)).json()["items"]] == ["Live product"]
    await login(staff())  # and the anonymous page, now cached, is not what staff get
    assert [i["title"] for i in (await client.get(url)).json()["items"]] == ["Draft product", "Live product"]
    # However the parameter is spelled, a page that asked for drafts is never stored.
    encoded = "/v1/catalog/products?include%5Funpublished=true&sort=title"
    await login(None)
    assert [i["title"] for i in (await client.get(encoded)).json()["items"]] == ["Live product"]
    await login(staff())
    assert [i["title"] for i in (await client.get(encoded)).json()["items"]] == [
        "Draft product",
        "Live product",
    ]
