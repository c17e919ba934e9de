"""Offline sync: pull with tombstones and a sequence cursor, push applied once per mutation."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from httpx import AsyncClient

from kirana.api.db.engine import Database
from kirana.api.sync import changes
from tests.integration.commerce.conftest import Catalog, Login, customer, idem, staff


async def _pull_all(
    client: AsyncClient, cursor: str | None = None, limit: int = 500
) -> tuple[list[dict[str, Any]], str]:
    got: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        r = await client.get("/v1/sync/pull", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        got += page["changes"]
        assert cursor is None or int(page["cursor"]) >= int(cursor)  # monotonic
        cursor = page["cursor"]
        if not page["has_more"]:
            return got, page["cursor"]


async def test_pull_returns_changes_and_tombstones_since_the_cursor(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    for _ in range(5):
        await shop.product()
    keep = await shop.product(sku="KEEP-1", title="Keep")
    gone = await shop.product(sku="GONE-1", title="Gone")
    await login(None)
    first, cursor = await _pull_all(client, limit=2)  # paged
    products = {c["id"] for c in first if c["entity"] == "product"}
    assert len(products) == 7 and any(c["entity"] == "category" for c in first)

    await login(staff())
    assert (await client.patch("/v1/catalog/variants/KEEP-1", json={"price_paise": 9_345})).status_code == 200
    await client.post(f"/v1/catalog/products/{gone.product.slug}/unpublish")
    await login(None)
    delta, cursor2 = await _pull_all(client, cursor)
    assert {(c["id"], c["deleted"]) for c in delta} == {
        (str(keep.product.id), False),
        (str(gone.product.id), True),
    }
    kept = next(c for c in delta if c["id"] == str(keep.product.id))
    assert kept["data"]["variants"][0]["price_paise"] == 9_345
    assert next(c for c in delta if c["deleted"])["data"] is None
    assert int(cursor2) > int(cursor)
    nothing, cursor3 = await _pull_all(client, cursor2)
    assert nothing == [] and cursor3 == cursor2


async def test_a_change_committed_late_with_an_earlier_start_is_not_skipped(
    client: AsyncClient, shop: Catalog, db: Database, login: Login
) -> None:
    early = await shop.product(title="Early")
    late = await shop.product(title="Late")
    await login(None)
    _, cursor = await _pull_all(client)
    # Transaction A records its change first but commits last; B commits in between.
    async with db.session() as a:
        await changes.record(a, entity=changes.PRODUCT, entity_id=early.product.id)
        await a.flush()
        async with db.session() as b:
            await changes.record(b, entity=changes.PRODUCT, entity_id=late.product.id)
        seen_b, cursor = await _pull_all(client, cursor)
        assert [c["id"] for c in seen_b] == [str(late.product.id)]
    seen_a, _ = await _pull_all(client, cursor)
    assert [c["id"] for c in seen_a] == [str(early.product.id)]


async def test_user_data_is_private_and_bad_cursors_are_problems(
    client: AsyncClient,
    shop: Catalog,
    database_url: str,
    login: Login,
) -> None:
    await shop.product(sku="SYNC-1", stock=5)
    await login(customer())
    await client.post("/v1/cart/lines", json={"sku": "SYNC-1", "quantity": 1})
    await client.post("/v1/checkout", json={}, headers=idem())
    mine, cursor = await _pull_all(client)
    kinds = {(c["entity"], c["deleted"]) for c in mine}
    assert ("order", False) in kinds and ("cart", True) in kinds
    await login(customer())
    theirs, _ = await _pull_all(client)
    assert not {c["entity"] for c in theirs} & {"cart", "order"}

    for bad in ("abc", "-1", "1.5", "9" * 30):
        r = await client.get("/v1/sync/pull", params={"cursor": bad})
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", bad
    r = await client.get("/v1/sync/pull", params={"cursor": str(int(cursor) + 1000)})
    assert r.status_code == 410 and r.json()["type"].endswith("sync-cursor-expired")
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE sync_floor SET floor_seq = %s", (int(cursor),))
    r = await client.get("/v1/sync/pull", params={"cursor": "1"})
    assert r.status_code == 410
    assert (await client.get("/v1/sync/pull", params={"cursor": "0"})).status_code == 200


async def test_push_applies_each_mutation_once_and_answers_per_mutation(
    client: AsyncClient,
    shop: Catalog,
    database_url: str,
    login: Login,
) -> None:
    await shop.product(sku="PUSH-1", price=5_000, stock=3)
    await shop.product(sku="PUSH-2", price=7_000, stock=10)
    await login(customer())
    ids = [str(uuid.uuid4()) for _ in range(5)]
    batch = {
        "mutations": [
            {
                "client_mutation_id": ids[0],
                "type": "cart.add",
                "sku": "PUSH-1",
                "quantity": 2,
                "expected_unit_price_paise": 5_000,
            },
            {
                "client_mutation_id": ids[1],
                "type": "cart.add",
                "sku": "PUSH-2",
                "quantity": 1,
                "expected_unit_price_paise": 6_500,
            },
            {"client_mutation_id": ids[2], "type": "cart.add", "sku": "PUSH-1", "quantity": 5},
            {"client_mutation_id": ids[3], "type": "cart.add", "sku": "NOPE-1", "quantity": 1},
            {"client_mutation_id": ids[4], "type": "order.place", "expected_total_paise": 10_000},
        ]
    }
    r = await client.post("/v1/sync/push", json=batch)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [(x["status"], x["reason"]) for x in results] == [
        ("applied", None),
        ("rejected", "price-changed"),
        ("rejected", "out-of-stock"),
        ("rejected", "unknown-sku"),
        ("applied", None),
    ]
    assert results[1]["data"]["unit_price_paise"] == 7_000
    order_id = results[4]["data"]["order_id"]

    again = (await client.post("/v1/sync/push", json=batch)).json()["results"]
    assert [x["status"] for x in again] == [x["status"] for x in results]
    assert all(x["replayed"] for x in again) and again[4]["data"]["order_id"] == order_id
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*), min(stock) FROM orders, catalog_variants WHERE sku = 'PUSH-1'"
        ).fetchone()
    assert row == (1, 1)

    reused = {"mutations": [{"client_mutation_id": ids[0], "type": "cart.remove", "sku": "PUSH-1"}]}
    assert (await client.post("/v1/sync/push", json=reused)).json()["results"][0][
        "reason"
    ] == "mutation-id-reused"
    malformed = {
        "mutations": [{"client_mutation_id": "nope", "type": "cart.add", "sku": "PUSH-1", "quantity": 1}]
    }
    assert (await client.post("/v1/sync/push", json=malformed)).status_code == 422
    assert (await client.post("/v1/sync/push", json={"mutations": []})).status_code == 422
