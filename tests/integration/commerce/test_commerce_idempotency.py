"""Idempotency-Key with Stripe's semantics on cart, checkout and order endpoints."""

from __future__ import annotations

import uuid

import psycopg
from httpx import AsyncClient

from tests.integration.commerce.conftest import Catalog, Login, customer


def _orders(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM orders").fetchone()
        assert row is not None
        return int(row[0])


async def test_retry_replays_status_and_body(
    client: AsyncClient,
    shop: Catalog,
    database_url: str,
    login: Login,
) -> None:
    await shop.product(sku="IDEM-1", stock=10)
    await login(customer())
    h = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"lines": [{"sku": "IDEM-1", "quantity": 1}]}
    first = await client.post("/v1/orders", json=body, headers=h)
    second = await client.post("/v1/orders", json=body, headers=h)
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert second.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert _orders(database_url) == 1

    # The same key with a different body is a client bug: 422, nothing placed.
    r = await client.post("/v1/orders", json={"lines": [{"sku": "IDEM-1", "quantity": 2}]}, headers=h)
    assert r.status_code == 422 and r.json()["type"].endswith("idempotency-key-reused")
    # ... and on a different endpoint too.
    r = await client.post("/v1/cart/lines", json={"sku": "IDEM-1", "quantity": 1}, headers=h)
    assert r.status_code == 422
    assert _orders(database_url) == 1


async def test_errors_are_replayed_too_but_keys_are_per_user(
    client: AsyncClient,
    shop: Catalog,
    database_url: str,
    login: Login,
) -> None:
    await shop.product(sku="IDEM-2", stock=1)
    await login(customer())
    h = {"Idempotency-Key": "retry-" + uuid.uuid4().hex}
    body = {"lines": [{"sku": "IDEM-2", "quantity": 2}]}
    first = await client.post("/v1/orders", json=body, headers=h)
    assert first.status_code == 409
    second = await client.post("/v1/orders", json=body, headers=h)
    assert second.status_code == 409 and second.content == first.content
    assert second.headers["content-type"] == "application/problem+json"
    # Another shopper who happens to pick the same key is unaffected.
    await login(customer())
    r = await client.post("/v1/orders", json={"lines": [{"sku": "IDEM-2", "quantity": 1}]}, headers=h)
    assert r.status_code == 201


async def test_a_key_still_running_gets_409_and_expired_keys_are_fresh(
    client: AsyncClient,
    shop: Catalog,
    database_url: str,
    login: Login,
) -> None:
    await shop.product(sku="IDEM-3", stock=10)
    me = await login(customer())
    assert me is not None
    key = str(uuid.uuid4())
    body = {"lines": [{"sku": "IDEM-3", "quantity": 1}]}
    first = await client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    with psycopg.connect(database_url) as conn:  # as if the first attempt were still in flight
        conn.execute(
            "UPDATE idempotency_keys SET state = 'running', locked_at = now() WHERE key = %s", (key,)
        )
    r = await client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 409 and r.json()["type"].endswith("idempotency-key-in-use")
    assert r.headers["retry-after"] == "1"
    with psycopg.connect(database_url) as conn:  # 24 h later the key means nothing any more
        conn.execute(
            "UPDATE idempotency_keys SET state = 'done', expires_at = now() - interval '1 second' "
            "WHERE key = %s",
            (key,),
        )
    r = await client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 201 and r.json()["id"] != first.json()["id"]
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT expires_at - created_at, state FROM idempotency_keys WHERE key = %s", (key,)
        ).fetchone()
    assert row is not None and row[0].total_seconds() == 24 * 3600
    assert row[1] == "done"  # the renewed key holds its new answer...
    again = await client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.json()["id"] == r.json()["id"]  # ...and replays it
    assert again.headers["idempotent-replayed"] == "true"


async def test_guest_cart_mutations_are_idempotent(client: AsyncClient, shop: Catalog, login: Login) -> None:
    await shop.product(sku="IDEM-4", stock=10)
    await login(None)
    token = (await client.post("/v1/carts")).json()["token"]
    h = {"X-Cart-Token": token, "Idempotency-Key": str(uuid.uuid4())}
    for _ in range(3):
        r = await client.post("/v1/cart/lines", json={"sku": "IDEM-4", "quantity": 2}, headers=h)
        assert r.status_code == 200
    assert (await client.get("/v1/cart", headers={"X-Cart-Token": token})).json()["item_count"] == 2
