"""Group commit of `POST /v1/orders`: concurrent orders share transactions and each still gets
exactly the answer it would get alone. Batches are gathered deterministically by holding the
batcher (`paused`) until every request of the test has queued. Buyers are real signed-in
customers: their requests take the production path (`orders.edge`, then `orders.batch`)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from kirana.api import metrics
from kirana.api.orders.batch import OrderBatcher
from kirana.api.settings import Settings
from tests.integration.access.helpers import Account, signed_in
from tests.integration.commerce.conftest import Catalog


def _batcher(app: FastAPI) -> OrderBatcher:
    batcher: OrderBatcher = app.state.order_batcher
    return batcher


def _count(database_url: str, sql: str, *args: object) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql, args).fetchone()
        assert row is not None
        return int(row[0])


def _order(sku: str, quantity: int = 1, **extra: Any) -> dict[str, Any]:
    return {"lines": [{"sku": sku, "quantity": quantity}], **extra}


async def _in_one_batch(app: FastAPI, calls: list[Callable[[], Awaitable[Response]]]) -> list[Response]:
    """Send every call at once and let the batcher go only when all of them have queued."""
    batcher = _batcher(app)
    async with batcher.paused():
        tasks = [asyncio.create_task(call()) for call in calls]
        while batcher.queued < len(calls):
            assert not any(t.done() for t in tasks), [t.result().text for t in tasks if t.done()]
            await asyncio.sleep(0.005)
    return list(await asyncio.gather(*tasks))


async def _batch_metrics(client: AsyncClient) -> tuple[float, float]:
    """(orders, transactions) so far, from the batch-size histogram on /metrics."""
    values = {}
    for line in metrics.text().splitlines():
        name, _, value = line.partition(" ")
        values[name] = value
    return (
        float(values.get("kirana_order_batch_orders_sum", 0)),
        float(values.get("kirana_order_batch_orders_count", 0)),
    )


@pytest.fixture
async def buyer(app: FastAPI, client: AsyncClient) -> Account:
    return await signed_in(app, client)


def _post(
    client: AsyncClient, buyer: Account, body: dict[str, Any], key: str | None = None
) -> Callable[[], Awaitable[Response]]:
    headers = {**buyer.headers, "Idempotency-Key": key or str(uuid.uuid4())}
    return lambda: client.post("/v1/orders", json=body, headers=headers)


async def test_200_simultaneous_orders_in_batches_sell_exactly_the_stock(
    app: FastAPI, client: AsyncClient, shop: Catalog, database_url: str, buyer: Account
) -> None:
    await shop.product(sku="HOT-SKU", stock=50)
    keys = [str(uuid.uuid4()) for _ in range(200)]
    before = await _batch_metrics(client)
    answers = await _in_one_batch(app, [_post(client, buyer, _order("HOT-SKU"), k) for k in keys])
    assert Counter(r.status_code for r in answers) == {201: 50, 409: 150}
    after = await _batch_metrics(client)  # 200 orders decided in 4 transactions, on /metrics
    assert (after[0] - before[0], after[1] - before[1]) == (200, 4)
    assert all(r.json()["type"].endswith("/out-of-stock") for r in answers if r.status_code == 409)
    assert _count(database_url, "SELECT stock FROM catalog_variants WHERE sku = 'HOT-SKU'") == 0
    assert _count(database_url, "SELECT count(*) FROM orders") == 50
    batcher = _batcher(app)
    assert batcher.largest == 64 and batcher.batches == 4 and batcher.fallbacks == 0  # 64+64+64+8
    # Every answer, refusals included, is stored under its key and replayed to a retry.
    for key, first in [(keys[0], answers[0]), (keys[-1], answers[-1])]:
        again = await _post(client, buyer, _order("HOT-SKU"), key)()
        assert again.status_code == first.status_code and again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
    assert _count(database_url, "SELECT count(*) FROM idempotency_keys WHERE state <> 'done'") == 0


async def test_batched_answers_are_what_a_read_shows_and_every_row_is_written(
    app: FastAPI, client: AsyncClient, shop: Catalog, database_url: str, buyer: Account
) -> None:
    await shop.product(sku="KURTA-M", price=79_900, mrp=99_900, stock=10, tax_class="gst_12")
    await shop.product(sku="DAL-1KG", price=14_500, stock=10, tax_class="gst_5")
    address = {"name": "Asha Rao", "line1": "12 MG Road", "city": "Bengaluru", "state": "KA",
               "pincode": "560001", "phone": "+919800000001"}  # fmt: skip
    bodies = [
        {"lines": [{"sku": "KURTA-M", "quantity": 2}, {"sku": "DAL-1KG", "quantity": 1}]},
        {"lines": [{"sku": "DAL-1KG", "quantity": 3}], "shipping_address": address},
        {"lines": [{"sku": "KURTA-M", "quantity": 2}]},
    ]
    answers = await _in_one_batch(app, [_post(client, buyer, b) for b in bodies])
    assert [r.status_code for r in answers] == [201, 201, 201], [r.text for r in answers]
    assert _batcher(app).largest == 3
    placed = [r.json() for r in answers]
    for order, answer in zip(placed, answers, strict=True):
        assert answer.headers["location"] == f"/v1/orders/{order['id']}"
        read = await client.get(answer.headers["location"], headers=buyer.headers)
        assert read.json() == order  # the answer is exactly what the database now holds
    assert [[(x["sku"], x["quantity"]) for x in o["lines"]] for o in placed] == [
        [("DAL-1KG", 1), ("KURTA-M", 2)],
        [("DAL-1KG", 3)],
        [("KURTA-M", 2)],
    ]
    assert placed[1]["shipping_address"] == {**address, "line2": ""}
    assert placed[0]["shipping_address"] is None
    assert len({o["number"] for o in placed}) == 3
    assert _count(database_url, "SELECT stock FROM catalog_variants WHERE sku = 'KURTA-M'") == 6
    assert _count(database_url, "SELECT stock FROM catalog_variants WHERE sku = 'DAL-1KG'") == 6
    assert _count(database_url, "SELECT count(*) FROM order_lines") == 4
    assert _count(database_url, "SELECT count(*) FROM order_events WHERE from_status IS NULL") == 3
    assert _count(database_url, "SELECT count(*) FROM outbox_events WHERE topic = 'order.placed'") == 3
    assert _count(database_url, "SELECT count(*) FROM sync_changes WHERE entity = 'order'") == 3


async def test_refused_orders_cost_the_rest_of_their_batch_nothing(
    app: FastAPI, client: AsyncClient, shop: Catalog, database_url: str, buyer: Account
) -> None:
    await shop.product(sku="OIL-1L", price=18_900, stock=3)
    await shop.product(sku="DAL-1KG", price=14_500, stock=3)
    await shop.product(sku="DRAFT-1", stock=3, publish=False)
    calls = [
        _post(client, buyer, _order("OIL-1L", 2)),
        _post(client, buyer, _order("NO-SUCH-SKU")),
        _post(client, buyer, _order("OIL-1L", 2)),  # whichever of these two comes second finds 1 left
        _post(client, buyer, _order("DRAFT-1")),
        _post(client, buyer, _order("DAL-1KG", 1, expected_total_paise=100)),
        _post(client, buyer, _order("DAL-1KG", 1, expected_total_paise=14_500)),
    ]
    answers = await _in_one_batch(app, calls)
    kinds = [(r.status_code, r.json().get("type", "").rsplit("/", 1)[-1]) for r in answers]
    assert sorted([kinds[0], kinds[2]]) == [(201, ""), (409, "out-of-stock")]
    assert kinds[1:2] + kinds[3:] == [
        (422, "unknown-sku"),
        (409, "not-sellable"),
        (409, "price-changed"),
        (201, ""),
    ]
    short = next(r for r in (answers[0], answers[2]) if r.status_code == 409)
    assert short.json()["lines"] == [{"sku": "OIL-1L", "requested": 2, "available": 1}]
    assert short.headers["content-type"] == "application/problem+json"
    assert _count(database_url, "SELECT stock FROM catalog_variants WHERE sku = 'OIL-1L'") == 1
    assert _count(database_url, "SELECT stock FROM catalog_variants WHERE sku = 'DAL-1KG'") == 2
    assert _count(database_url, "SELECT count(*) FROM orders") == 2
    # Each refusal is the stored answer to its key, as when placed alone.
    for call, first in zip(calls, answers, strict=True):
        again = await call()
        assert (again.status_code, again.content) == (first.status_code, first.content)


async def test_one_key_twice_in_a_batch_places_one_order(
    app: FastAPI, client: AsyncClient, shop: Catalog, database_url: str, buyer: Account
) -> None:
    await shop.product(sku="OIL-1L", stock=5)
    key = str(uuid.uuid4())
    answers = await _in_one_batch(app, [_post(client, buyer, _order("OIL-1L"), key) for _ in range(3)])
    assert sorted(r.status_code for r in answers) == [201, 409, 409]
    busy = [r for r in answers if r.status_code == 409]
    assert all(r.json()["type"].endswith("/idempotency-key-in-use") for r in busy)
    assert all(r.headers["retry-after"] == "1" for r in busy)
    again = await _post(client, buyer, _order("OIL-1L"), key)()
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == next(r.content for r in answers if r.status_code == 201)
    assert _count(database_url, "SELECT count(*) FROM orders") == 1


async def test_known_keys_in_a_batch_are_answered_as_alone(
    app: FastAPI, client: AsyncClient, shop: Catalog, database_url: str, buyer: Account
) -> None:
    await shop.product(sku="OIL-1L", stock=5)
    await shop.product(sku="DAL-1KG", stock=5)
    key = str(uuid.uuid4())
    first = await _post(client, buyer, _order("OIL-1L"), key)()
    assert first.status_code == 201
    retry, fresh = await _in_one_batch(
        app, [_post(client, buyer, _order("OIL-1L"), key), _post(client, buyer, _order("DAL-1KG"))]
    )
    assert retry.status_code == 201 and retry.content == first.content
    assert retry.headers["idempotent-replayed"] == "true"
    assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers
    reused, fresh = await _in_one_batch(
        app, [_post(client, buyer, _order("DAL-1KG"), key), _post(client, buyer, _order("DAL-1KG"))]
    )  # another body under a known key
    assert reused.status_code == 422 and reused.json()["type"].endswith("/idempotency-key-reused")
    assert fresh.status_code == 201
    assert _count(database_url, "SELECT count(*) FROM orders") == 3


async def test_a_failed_batch_places_each_of_its_orders_alone(
    app: FastAPI, client: AsyncClient, shop: Catalog, database_url: str, buyer: Account
) -> None:
    await shop.product(sku="OIL-1L", stock=10)
    # The database refuses any statement that inserts more than one order: every shared write.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            """
            CREATE FUNCTION refuse_shared() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF (SELECT count(*) FROM inserted) > 1 THEN
                    RAISE EXCEPTION 'simulated failure of a shared write';
                END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER refuse_shared AFTER INSERT ON orders REFERENCING NEW TABLE AS inserted
                FOR EACH STATEMENT EXECUTE FUNCTION refuse_shared();
            """
        )
    keys = [str(uuid.uuid4()) for _ in range(3)]
    answers = await _in_one_batch(app, [_post(client, buyer, _order("OIL-1L", 2), k) for k in keys])
    assert [r.status_code for r in answers] == [201, 201, 201], [r.text for r in answers]
    assert all("idempotent-replayed" not in r.headers for r in answers)
    assert _batcher(app).fallbacks == 1
    assert _count(database_url, "SELECT stock FROM catalog_variants WHERE sku = 'OIL-1L'") == 4
    assert _count(database_url, "SELECT count(*) FROM orders") == 3
    assert _count(database_url, "SELECT count(*) FROM idempotency_keys WHERE state = 'done'") == 3
    for key, first in zip(keys, answers, strict=True):
        again = await _post(client, buyer, _order("OIL-1L", 2), key)()
        assert (again.status_code, again.content) == (201, first.content)


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    if request.node.name.startswith("test_with_batching_off"):
        return settings.model_copy(update={"order_batch_max": 0})
    return settings


async def test_with_batching_off_each_order_has_its_own_transaction(
    app: FastAPI, client: AsyncClient, shop: Catalog, database_url: str, buyer: Account
) -> None:
    assert app.state.order_batcher is None
    await shop.product(sku="OIL-1L", stock=1)
    key = str(uuid.uuid4())
    first, other = await asyncio.gather(
        _post(client, buyer, _order("OIL-1L"), key)(), _post(client, buyer, _order("OIL-1L"))()
    )
    assert sorted([first.status_code, other.status_code]) == [201, 409]
    again = await _post(client, buyer, _order("OIL-1L"), key)()
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert _count(database_url, "SELECT count(*) FROM orders") == 1
