"""GET /v1/search and /v1/search/suggest against real PostgreSQL: matching, Hinglish folding,
synonyms, typos, facets counted with the other facets applied, keyset pages, freshness on
catalog writes, and bad input that never becomes a 500.

These run with the search page cache off: tests that write through plain SQL expect the next
search to see it, and that is the statement's behaviour. With the cache on, a write reaches
the cache by notification a moment later; `test_search_cache` covers that.
"""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import text

from kirana.api.db.engine import Database
from kirana.api.search import scheduled as search_jobs
from kirana.api.settings import Settings
from tests.integration.commerce.conftest import Catalog, Login, customer, idem, staff

pytestmark = pytest.mark.asyncio


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"search_cache_s": 0.0})


async def _titles(client: AsyncClient, **params: Any) -> list[str]:
    r = await client.get("/v1/search", params=params)
    assert r.status_code == 200, r.text
    return [h["title"] for h in r.json()["items"]]


@pytest.fixture
async def groceries(shop: Catalog) -> Catalog:
    await shop.category("dal-pulses", parent="grocery")
    await shop.category("rice-atta", parent="grocery")
    for b in ("tata-sampann", "aashirvaad", "amul"):
        await shop.brand(b)
    await shop.product(
        title="Tata Sampann Unpolished Toor Dal",
        category="dal-pulses",
        brand="tata-sampann",
        attributes={"pack": "1 kg"},
        price=18_000,
        sku="DAL-TOOR-1",
    )
    await shop.product(
        title="Tata Sampann Moong Dal",
        category="dal-pulses",
        brand="tata-sampann",
        attributes={"pack": "500 g"},
        price=9_000,
    )
    await shop.product(
        title="Aashirvaad Whole Wheat Atta",
        category="rice-atta",
        brand="aashirvaad",
        attributes={"pack": "5 kg"},
        price=29_000,
    )
    await shop.product(title="Amul Taaza Toned Milk", category="grocery", brand="amul", price=5_400, stock=0)
    await shop.product(title="Basmati Rice Premium", category="rice-atta", price=15_000)
    return shop


async def test_words_brands_and_hinglish_spellings_find_products(
    client: AsyncClient, groceries: Catalog
) -> None:
    assert (await _titles(client, q="toor dal"))[0] == "Tata Sampann Unpolished Toor Dal"
    assert set(await _titles(client, q="daal")) == {
        "Tata Sampann Unpolished Toor Dal",
        "Tata Sampann Moong Dal",
    }
    # the category "Rice-Atta" matches too, below the product whose title says it
    assert (await _titles(client, q="aata"))[0] == "Aashirvaad Whole Wheat Atta"
    assert (await _titles(client, q="आटा"))[0] == "Aashirvaad Whole Wheat Atta"
    assert (await _titles(client, q="wheat flour"))[0] == "Aashirvaad Whole Wheat Atta"
    assert await _titles(client, q="doodh") == ["Amul Taaza Toned Milk"]
    assert (await _titles(client, q="chawal"))[0] == "Basmati Rice Premium"
    assert set(await _titles(client, q="tata sampann")) == {
        "Tata Sampann Unpolished Toor Dal",
        "Tata Sampann Moong Dal",
    }


async def test_typos_prefixes_and_sku(client: AsyncClient, groceries: Catalog) -> None:
    assert await _titles(client, q="basmti") == ["Basmati Rice Premium"]
    assert await _titles(client, q="aashirvad") == ["Aashirvaad Whole Wheat Atta"]
    assert await _titles(client, q="unpol") == ["Tata Sampann Unpolished Toor Dal"]
    assert (await _titles(client, q="dal-toor-1"))[0] == "Tata Sampann Unpolished Toor Dal"
    r = await client.get("/v1/search", params={"q": "xqzvvk"})
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.get("/v1/search", params={"q": "moongg daal premiumm"})
    assert r.status_code == 200


async def test_did_you_mean_when_nothing_matches(client: AsyncClient, groceries: Catalog) -> None:
    r = await client.get("/v1/search", params={"q": "basmoto"})
    body = r.json()
    assert body["total"] == 0 and body["did_you_mean"] == "basmati"


async def test_facets_count_with_the_other_facets_applied(client: AsyncClient, groceries: Catalog) -> None:
    r = await client.get("/v1/search", params={"q": "tata dal atta", "brand": "tata-sampann"})
    body = r.json()
    # any-word fallback: three products mention tata, dal or atta
    brands = {b["value"]: b["count"] for b in body["facets"]["brands"]}
    assert brands == {"tata-sampann": 2, "aashirvaad": 1}
    assert body["total"] == 2
    cats = {c["slug"]: c["count"] for c in body["facets"]["categories"]}
    assert cats == {"grocery": 2, "dal-pulses": 2}
    attrs = {a["value"]: a["count"] for a in body["facets"]["attributes"]}
    assert attrs == {"pack:1 kg": 1, "pack:500 g": 1}
    r = await client.get("/v1/search", params={"q": "dal", "attr": "pack:1 kg"})
    attrs = {a["value"]: a["count"] for a in r.json()["facets"]["attributes"]}
    assert attrs == {"pack:1 kg": 1, "pack:500 g": 1} and r.json()["total"] == 1


async def test_in_stock_facet_and_filter(client: AsyncClient, groceries: Catalog) -> None:
    r = await client.get("/v1/search", params={"q": "milk", "in_stock": "true"})
    body = r.json()
    assert body["total"] == 0
    assert {x["in_stock"]: x["count"] for x in body["facets"]["in_stock"]} == {False: 1}


async def test_keyset_pages_under_relevance_are_stable(client: AsyncClient, shop: Catalog) -> None:
    for i in range(7):
        await shop.product(title=f"Masala Chai Blend {i}", stock=i)
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"q": "chai", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/v1/search", params=params)).json()
        seen += [h["id"] for h in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 7 and len(set(seen)) == 7
    all_at_once = (await client.get("/v1/search", params={"q": "chai", "limit": 50})).json()["items"]
    assert [h["id"] for h in all_at_once] == seen


async def test_publish_unpublish_and_stock_are_seen_at_once(
    client: AsyncClient, groceries: Catalog, db: Database
) -> None:
    async with db.session() as s:
        await s.execute(text("UPDATE catalog_products SET is_published = false WHERE title LIKE 'Basmati%'"))
    assert await _titles(client, q="basmati") == []
    async with db.session() as s:
        await s.execute(text("UPDATE catalog_products SET is_published = true WHERE title LIKE 'Basmati%'"))
    assert await _titles(client, q="basmati") == ["Basmati Rice Premium"]
    async with db.session() as s:
        await s.execute(
            text(
                "UPDATE catalog_variants SET stock = 0 WHERE product_id = "
                "(SELECT id FROM catalog_products WHERE title LIKE 'Basmati%')"
            )
        )
    r = await client.get("/v1/search", params={"q": "basmati"})
    assert r.json()["facets"]["in_stock"] == [{"in_stock": False, "count": 1}]


async def _doc_version(db: Database, title: str) -> tuple[str, bool, int]:
    """The row version (xmin) of a product's search document, its in_stock and popularity."""
    async with db.session() as s:
        row = (
            await s.execute(
                text("SELECT xmin::text, in_stock, popularity FROM search_documents WHERE title = :t"),
                {"t": title},
            )
        ).one()
    return str(row[0]), bool(row[1]), int(row[2])


async def test_orders_leave_documents_alone_until_stock_crosses_zero(
    client: AsyncClient, shop: Catalog, db: Database, login: Login
) -> None:
    """An order's stock decrement rewrites no search document (the update trigger's WHEN clause
    queues nothing); the order that takes the last unit flips in_stock at once; what sold
    reaches popularity, and the ranking, through the search job rather than the order."""
    skus = {"Chakki Atta Daily": "ATTA-A", "Chakki Atta Select": "ATTA-B"}
    for title, sku in skus.items():
        await shop.product(title=title, sku=sku, stock=3)
    # Equal in every respect but their ids; the one ranked second is the one that will sell.
    first, second = await _titles(client, q="chakki atta")
    before = await _doc_version(db, second)
    await login(customer())
    order = {"lines": [{"sku": skus[second], "quantity": 2}]}
    assert (await client.post("/v1/orders", json=order, headers=idem())).status_code == 201
    assert await _doc_version(db, second) == before  # same row version: not rewritten
    order = {"lines": [{"sku": skus[second], "quantity": 1}]}
    assert (await client.post("/v1/orders", json=order, headers=idem())).status_code == 201
    version, in_stock, popularity = await _doc_version(db, second)
    assert version != before[0] and in_stock is False and popularity == 0
    async with db.session() as s:
        await s.execute(text("UPDATE catalog_variants SET stock = 5 WHERE sku IN ('ATTA-A', 'ATTA-B')"))
    assert (await _doc_version(db, second))[1] is True
    assert await _titles(client, q="chakki atta") == [first, second]  # sales not seen yet
    assert await search_jobs.rebuild_terms(db) >= 1
    assert (await _doc_version(db, second))[2] == 3 and (await _doc_version(db, first))[2] == 0
    assert await _titles(client, q="chakki atta") == [second, first]
    assert await search_jobs.rebuild_terms(db) == 0  # nothing moved: nothing written


@pytest.mark.parametrize(
    "q",
    [
        "&",
        "|",
        "!",
        ":",
        "*",
        "(",
        ")",
        "'",
        "\\",
        "%",
        "_",
        "dal & | ! : * ( ) ' \\ % _",
        "dal:*",
        "'dal'",
        "dal)",
        "!(dal",
        "%dal_",
        "😀",
        "दाल 😀",
        "Ünïcödé dal",
        "\x00dal",
        "a" * 200,
    ],
)
async def test_metacharacters_unicode_and_emoji_never_fail(
    client: AsyncClient, groceries: Catalog, q: str
) -> None:
    r = await client.get("/v1/search", params={"q": q})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/v1/search/suggest", params={"q": q})
    assert r.status_code in (200, 422), r.text


async def test_empty_long_query_unknown_facets_and_bad_cursor(
    client: AsyncClient, groceries: Catalog
) -> None:
    for params in (
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 1000},
        {"q": "dal", "cursor": "!!"},
        {"q": "dal", "attr": "pack"},
        {"q": "dal", "sort": "cheapest"},
    ):
        r = await client.get("/v1/search", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get(
        "/v1/search", params={"q": "dal", "category": "x\x00", "brand": "\x00", "attr": "a:\x00"}
    )
    assert r.status_code == 200 and r.json()["total"] == 0
    r = await client.get("/v1/search", params={"q": "dal", "category": "no-such", "attr": "colour:teal"})
    assert r.status_code == 200 and r.json()["total"] == 0
    r = await client.get("/v1/search", params={"q": "", "category": "dal-pulses"})
    assert r.status_code == 200 and r.json()["total"] == 2


async def test_sorts(client: AsyncClient, groceries: Catalog) -> None:
    titles = await _titles(client, q="dal", sort="price_asc")
    assert titles == ["Tata Sampann Moong Dal", "Tata Sampann Unpolished Toor Dal"]
    assert await _titles(client, q="dal", sort="price_desc") == titles[::-1]


async def test_suggest_completes_from_the_first_character(client: AsyncClient, groceries: Catalog) -> None:
    r = await client.get("/v1/search/suggest", params={"q": "t"})
    texts = [x["text"] for x in r.json()["items"]]
    assert "Tata Sampann Moong Dal" in texts
    r = await client.get("/v1/search/suggest", params={"q": "aash"})
    assert [x["text"] for x in r.json()["items"]] == ["Aashirvaad Whole Wheat Atta"]


async def test_staff_synonyms_are_audited_and_used_at_once(
    client: AsyncClient, groceries: Catalog, login: Login, db: Database
) -> None:
    assert await _titles(client, q="shakkar") == []
    await login(None)
    r = await client.post("/v1/search/synonyms", json={"terms": ["shakkar", "milk"]})
    assert r.status_code == 401
    await login(staff(permissions=frozenset({"search:synonyms"})))
    r = await client.post("/v1/search/synonyms", json={"terms": ["shakkar", "milk"]})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert await _titles(client, q="shakkar") == ["Amul Taaza Toned Milk"]
    r = await client.put(f"/v1/search/synonyms/{sid}", json={"terms": ["shakkar", "rice"]})
    assert r.status_code == 200
    assert (await _titles(client, q="shakkar"))[0] == "Basmati Rice Premium"
    assert (await client.delete(f"/v1/search/synonyms/{sid}")).status_code == 204
    assert await _titles(client, q="shakkar") == []
    assert (await client.delete(f"/v1/search/synonyms/{sid}")).status_code == 404
    assert (await client.post("/v1/search/synonyms", json={"terms": ["x"]})).status_code == 422
    poisoned = await client.post("/v1/search/synonyms", json={"terms": ["sha\u0000kkar", "milk"]})
    assert poisoned.status_code == 422 and poisoned.headers["content-type"] == "application/problem+json"
    async with db.session() as s:
        actions = (
            (await s.execute(text("SELECT action FROM audit_log WHERE action LIKE 'search.%' ORDER BY seq")))
            .scalars()
            .all()
        )
    assert actions == ["search.synonym_created", "search.synonym_updated", "search.synonym_deleted"]
