"""The search and suggestion page caches: repeated searches and suggestions are answered from them
with the route's own answer, and every committed change to what a search shows empties them at
once (a product, its stock, the popularity the search job writes, a synonym group, from this
process or any other); a suggestion weight empties only the suggestion cache, and a weight
rebuild that moves nothing empties nothing; while changes cannot be followed they are
bypassed."""

from __future__ import annotations

import psycopg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from kirana.api.catalog.listing_cache import ListingCache
from kirana.api.db.engine import Database
from kirana.api.db.urls import libpq_url
from kirana.api.search import scheduled as search_jobs
from kirana.api.settings import Settings
from tests.integration.commerce.conftest import Catalog, Login, customer, idem, staff
from tests.integration.commerce.notified import kill_listener, settled, until

TTL = 600.0  # freshness must come from notifications, never from waiting this out


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"search_cache_s": TTL})


def _cache(app: FastAPI, name: str = "search_cache") -> ListingCache:
    cache: ListingCache = getattr(app.state, name)
    return cache


def _titles(r: Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [h["title"] for h in r.json()["items"]]


async def _search(client: AsyncClient, q: str, **headers: str) -> Response:
    return await client.get("/v1/search", params={"q": q}, headers=headers)


def _sql(settings: Settings, statement: str) -> None:
    """Run a statement from another connection, as a job, another process or psql would."""
    with psycopg.connect(libpq_url(settings.database_url), autocommit=True) as conn:
        conn.execute(statement)


async def _changed(app: FastAPI, settings: Settings, statement: str, cache: str = "search_cache") -> float:
    """Run `statement` elsewhere; seconds until this process's `cache` was emptied."""
    seen = _cache(app, cache).invalidations
    _sql(settings, statement)
    return await until(lambda: _cache(app, cache).invalidations > seen)


async def _suggest(client: AsyncClient, q: str, **headers: str) -> Response:
    return await client.get("/v1/search/suggest", params={"q": q}, headers=headers)


def _texts(r: Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [x["text"] for x in r.json()["items"] if x["kind"] == "product"]


async def test_a_repeated_search_is_answered_from_the_cache_like_the_route(
    app: FastAPI, client: AsyncClient, shop: Catalog, settings: Settings
) -> None:
    await shop.product(title="Chakki Fresh Atta", sku="ATTA-1")
    await settled(app, settings)
    miss = await _search(client, "atta", **{"X-Request-ID": "miss-1"})
    hits = _cache(app).hits
    hit = await _search(client, "atta", **{"X-Request-ID": "hit-1"})
    assert _cache(app).hits == hits + 1
    assert _titles(hit) == ["Chakki Fresh Atta"] and hit.content == miss.content
    for name in ("etag", "cache-control", "content-type", "content-length"):
        assert hit.headers[name] == miss.headers[name], name
    assert hit.headers["x-request-id"] == "hit-1"
    not_modified = await _search(client, "atta", **{"If-None-Match": hit.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.content == b""
    # Another spelling of the query is another entry; an invalid one never reaches the cache.
    other = await client.get("/v1/search", params={"q": "atta", "limit": 5})
    assert _titles(other) == ["Chakki Fresh Atta"] and _cache(app).hits == hits + 2  # the 304 hit
    bad = await client.get("/v1/search", params={"q": "atta", "limit": 0})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    bad_again = await client.get("/v1/search", params={"q": "atta", "limit": 0})
    assert bad_again.status_code == 422
    # Search is public and ignores credentials: a token the edge cannot accept goes to the
    # route, which answers the same page.
    hits = _cache(app).hits
    routed = await _search(client, "atta", Authorization="Bearer not-a-token")
    assert routed.status_code == 200 and routed.content == miss.content
    assert _cache(app).hits == hits + 1  # the route's own hit; the edge refused it and counted none


async def test_catalog_and_stock_changes_from_elsewhere_empty_it_at_once(
    app: FastAPI, client: AsyncClient, shop: Catalog, settings: Settings
) -> None:
    await shop.product(title="Basmati Rice Premium", sku="RICE-1", stock=1)
    await settled(app, settings)
    first = await _search(client, "basmati")
    assert _titles(first) == ["Basmati Rice Premium"]
    assert first.json()["facets"]["in_stock"] == [{"in_stock": True, "count": 1}]
    waited = await _changed(app, settings, "UPDATE catalog_variants SET stock = 0 WHERE sku = 'RICE-1'")
    assert waited < 3.0
    sold_out = await _search(client, "basmati")
    assert sold_out.json()["facets"]["in_stock"] == [{"in_stock": False, "count": 1}]
    assert (await _search(client, "basmati", **{"If-None-Match": first.headers["etag"]})).status_code == 200
    # A new SKU changes no listing, only the search document: the document itself notifies.
    await _changed(app, settings, "UPDATE catalog_variants SET sku = 'RICE-PREMIUM-1' WHERE sku = 'RICE-1'")
    assert _titles(await _search(client, "RICE-PREMIUM-1"))[0] == "Basmati Rice Premium"
    await _changed(app, settings, "UPDATE catalog_products SET is_published = false")
    assert _titles(await _search(client, "basmati")) == []


async def test_popularity_from_the_search_job_reorders_cached_answers(
    app: FastAPI, client: AsyncClient, shop: Catalog, settings: Settings, login: Login, db: Database
) -> None:
    skus = {"Chakki Atta Daily": "ATTA-A", "Chakki Atta Select": "ATTA-B"}
    for title, sku in skus.items():
        await shop.product(title=title, sku=sku, stock=10)
    await settled(app, settings)
    first, second = _titles(await _search(client, "chakki atta"))
    await login(customer())
    order = {"lines": [{"sku": skus[second], "quantity": 3}]}
    assert (await client.post("/v1/orders", json=order, headers=idem())).status_code == 201
    await login(None)
    await settled(app, settings)
    assert _titles(await _search(client, "chakki atta")) == [first, second]  # not counted yet
    seen = _cache(app).invalidations
    assert await search_jobs.rebuild_terms(db) >= 1  # the job writes the new popularity
    await until(lambda: _cache(app).invalidations > seen)
    assert _titles(await _search(client, "chakki atta")) == [second, first]
    # A job run that moves no figure writes nothing, so nothing is emptied: only the fence arrives.
    seen = _cache(app).invalidations
    assert await search_jobs.rebuild_terms(db) == 0
    await settled(app, settings)
    assert _cache(app).invalidations == seen + 1


async def test_synonym_groups_empty_it_from_this_process_at_once_and_from_others(
    app: FastAPI, client: AsyncClient, shop: Catalog, settings: Settings, login: Login
) -> None:
    await shop.product(title="Amul Taaza Toned Milk", sku="MILK-1")
    await shop.product(title="Basmati Rice Premium", sku="RICE-1")
    await settled(app, settings)
    assert _titles(await _search(client, "shakkar")) == []
    await login(staff(permissions=frozenset({"search:synonyms"})))
    r = await client.post("/v1/search/synonyms", json={"terms": ["shakkar", "milk"]})
    assert r.status_code == 201, r.text
    # No waiting: the write emptied this process's cache before answering.
    assert _titles(await _search(client, "shakkar")) == ["Amul Taaza Toned Milk"]
    rice = (
        "UPDATE search_synonyms SET terms = '{shakkar,rice}', "
        "folded = ARRAY[search_fold('shakkar'), search_fold('rice')] "
        "WHERE 'shakkar' = ANY(terms)"
    )
    await _changed(app, settings, rice)
    assert _titles(await _search(client, "shakkar")) == ["Basmati Rice Premium"]
    await _changed(app, settings, "DELETE FROM search_synonyms WHERE 'shakkar' = ANY(terms)")
    assert _titles(await _search(client, "shakkar")) == []


async def test_a_lost_listening_connection_bypasses_it_until_it_is_back(
    app: FastAPI, client: AsyncClient, shop: Catalog, settings: Settings
) -> None:
    await shop.product(title="Toor Dal 5 kg", sku="DAL-5")
    await settled(app, settings)
    cache = _cache(app)
    await _search(client, "toor")
    with psycopg.connect(libpq_url(settings.database_url), autocommit=True) as conn:
        kill_listener(conn)
        await until(lambda: not cache.followed)
        conn.execute("UPDATE catalog_products SET title = 'Toor Dal 5 kg (new)'")
        hits = cache.hits
        assert _titles(await _search(client, "toor")) == ["Toor Dal 5 kg (new)"]
        assert cache.hits == hits  # read from the database, not the cache
    await until(lambda: cache.followed)
    await _search(client, "toor")
    hits = cache.hits
    assert _titles(await _search(client, "toor")) == ["Toor Dal 5 kg (new)"]
    assert cache.hits == hits + 1


async def test_suggestions_are_answered_from_their_cache_and_emptied_by_catalog_changes(
    app: FastAPI, client: AsyncClient, shop: Catalog, settings: Settings
) -> None:
    await shop.product(title="Chakki Fresh Atta", sku="ATTA-1")
    await settled(app, settings)
    cache = _cache(app, "suggest_cache")
    miss = await _suggest(client, "chak")
    hits = cache.hits
    hit = await _suggest(client, "chak", **{"X-Request-ID": "hit-2"})
    assert cache.hits == hits + 1 and hit.content == miss.content
    assert _texts(hit) == ["Chakki Fresh Atta"]
    for name in ("etag", "cache-control", "content-type", "content-length"):
        assert hit.headers[name] == miss.headers[name], name
    assert hit.headers["x-request-id"] == "hit-2"
    not_modified = await _suggest(client, "chak", **{"If-None-Match": hit.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.content == b""
    bad = await client.get("/v1/search/suggest", params={"q": "chak", "limit": 0})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    # A product published from elsewhere (its title's keys written by the catalog's triggers).
    await _changed(
        app,
        settings,
        "UPDATE catalog_products SET title = 'Chakki Gold Atta', is_published = true",
        "suggest_cache",
    )
    assert "Chakki Gold Atta" in _texts(await _suggest(client, "chak"))


async def test_suggestion_weights_empty_only_the_suggestion_cache(
    app: FastAPI, client: AsyncClient, shop: Catalog, settings: Settings
) -> None:
    for title, sku in (("Chakki Atta Daily", "ATTA-A"), ("Chakki Atta Select", "ATTA-B")):
        await shop.product(title=title, sku=sku)
    await settled(app, settings)
    first = _texts(await _suggest(client, "chakki"))
    assert sorted(first) == ["Chakki Atta Daily", "Chakki Atta Select"]
    await _search(client, "chakki")
    assert (await client.get("/v1/catalog/products")).status_code == 200
    listing, found = _cache(app, "catalog_listing_cache"), _cache(app)
    unmoved = (listing.invalidations, found.invalidations)
    # A weight moved from elsewhere (as the search job writes them): the suggestion cache only.
    await _changed(
        app,
        settings,
        f"UPDATE search_terms SET weight = weight + 100 WHERE term = '{first[-1]}'",
        "suggest_cache",
    )
    assert (listing.invalidations, found.invalidations) == unmoved
    assert _texts(await _suggest(client, "chakki")) == [first[-1], first[0]]
    # The job's rebuild puts the weights back (what sold decides), and says so.
    await _changed(app, settings, "SELECT search_rebuild_terms()", "suggest_cache")
    assert (listing.invalidations, found.invalidations) == unmoved
    assert _texts(await _suggest(client, "chakki")) == first
    # A rebuild that moves no weight writes no row, so nothing is emptied: only the fence arrives.
    seen = _cache(app, "suggest_cache").invalidations
    _sql(settings, "SELECT search_rebuild_terms()")
    await settled(app, settings)
    assert _cache(app, "suggest_cache").invalidations == seen + 1
