"""Orders carrying text or numbers PostgreSQL cannot store are refused on their own, before
they join a group-commit batch: valid orders sent with them are still placed together."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import psycopg
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text

from kirana.api import metrics
from kirana.api.db.engine import Database
from kirana.api.db.raw import Statement
from kirana.api.orders.batch import OrderBatcher
from tests.integration.access.helpers import signed_in
from tests.integration.commerce.conftest import Catalog

ADDRESS = {"name": "Asha", "phone": "+919845012345", "line1": "12 MG Road", "city": "Bengaluru",
           "state": "KA", "pincode": "560001"}  # fmt: skip


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ")[1])
    return 0.0


async def test_60_valid_orders_with_10_poison_ones_mixed_in_are_still_batched(
    app: FastAPI, client: AsyncClient, shop: Catalog
) -> None:
    await shop.product(sku="POISON-OK", stock=100)
    buyer = await signed_in(app, client)
    batcher: OrderBatcher = app.state.order_batcher
    poison: list[dict[str, Any]] = [
        {"shipping_address": {**ADDRESS, "name": "As\x00ha"}},
        {"shipping_address": {**ADDRESS, "line1": "12 MG Road \ud800"}},
        {"expected_total_paise": 2**63},
        {"shipping_address": {**ADDRESS, "city": "x" * 20_000}},
        {"store_code": "main\x00"},
    ] * 2
    bodies: list[dict[str, Any]] = [{} for _ in range(60)] + poison
    bodies = bodies[::7] + [b for i, b in enumerate(bodies) if i % 7]  # poison mixed in

    def call(extra: dict[str, Any]) -> Any:
        body = {"lines": [{"sku": "POISON-OK", "quantity": 1}], **extra}
        headers = {**buyer.headers, "Idempotency-Key": str(uuid.uuid4()), "content-type": "application/json"}
        return client.post("/v1/orders", content=json.dumps(body).encode(), headers=headers)

    before = metrics.text()
    async with batcher.paused():
        tasks = [asyncio.create_task(call(b)) for b in bodies]
        for _ in range(2000):
            if batcher.queued >= 60:
                break
            await asyncio.sleep(0.005)
    answers = await asyncio.gather(*tasks)
    after = metrics.text()

    refused = [r for r, b in zip(answers, bodies, strict=True) if b]
    placed = [r for r, b in zip(answers, bodies, strict=True) if not b]
    assert [r.status_code for r in refused] == [422] * 10, [r.text[:200] for r in refused]
    assert all(r.headers["content-type"] == "application/problem+json" for r in refused)
    assert [r.status_code for r in placed] == [201] * 60
    orders = _metric(after, "kirana_order_batch_orders_sum") - _metric(
        before, "kirana_order_batch_orders_sum"
    )
    batches = _metric(after, "kirana_order_batch_orders_count") - _metric(
        before, "kirana_order_batch_orders_count"
    )
    assert orders == 60 and batches == 1  # one transaction for all 60
    assert _metric(after, "kirana_order_batch_fallbacks_total") == _metric(
        before, "kirana_order_batch_fallbacks_total"
    )


POISON_TRIGGER = """
CREATE FUNCTION test_refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.shipping_address->>'name' = 'Poison' THEN
        RAISE EXCEPTION 'value out of range for this test' USING ERRCODE = '22003';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_refuse_poison BEFORE INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION test_refuse_poison();
"""


async def test_a_database_error_in_one_batched_order_is_that_orders_answer_alone(
    app: FastAPI, client: AsyncClient, shop: Catalog, database_url: str
) -> None:
    """Input the database still refuses (here a trigger raising a data exception, SQLSTATE
    22003) fails only its own order: it gets 422 problem+json, the others of its batch are
    placed in that batch, and the batch does not fall back to one-by-one placement."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(POISON_TRIGGER)
    await shop.product(sku="POISON-DB", stock=100)
    buyer = await signed_in(app, client)
    batcher: OrderBatcher = app.state.order_batcher
    poisoned = [i % 6 == 3 for i in range(30)]

    def call(poison: bool) -> Any:
        body = {"lines": [{"sku": "POISON-DB", "quantity": 1}],
                "shipping_address": {**ADDRESS, "name": "Poison" if poison else "Asha"}}  # fmt: skip
        headers = {**buyer.headers, "Idempotency-Key": str(uuid.uuid4()), "content-type": "application/json"}
        return client.post("/v1/orders", content=json.dumps(body).encode(), headers=headers)

    before = metrics.text()
    async with batcher.paused():
        tasks = [asyncio.create_task(call(p)) for p in poisoned]
        for _ in range(2000):
            if batcher.queued >= len(tasks):
                break
            await asyncio.sleep(0.005)
    answers = await asyncio.gather(*tasks)
    after = metrics.text()

    assert [r.status_code for r in answers] == [422 if p else 201 for p in poisoned], [
        r.text[:200] for r in answers
    ]
    refused = [r for r, p in zip(answers, poisoned, strict=True) if p]
    assert all(r.headers["content-type"] == "application/problem+json" for r in refused)
    assert all(r.json()["sqlstate"] == "22003" for r in refused)
    assert _metric(after, "kirana_order_batch_fallbacks_total") == _metric(
        before, "kirana_order_batch_fallbacks_total"
    )
    assert (
        _metric(after, "kirana_order_batch_orders_count") - _metric(before, "kirana_order_batch_orders_count")
        == 1
    )
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM orders), stock FROM catalog_variants WHERE sku = 'POISON-DB'"
        ).fetchone()
    assert row == (25, 75)
    # A retry of a refused order gets the same answer, stored under its key.
    again = await client.post(
        "/v1/orders", content=refused[0].request.content, headers=dict(refused[0].request.headers)
    )
    assert again.status_code == 422 and again.headers.get("idempotent-replayed") == "true"


async def test_a_data_exception_from_the_database_is_a_422_problem_not_a_500(
    app: FastAPI, client: AsyncClient
) -> None:
    """Whatever still reaches PostgreSQL and is refused as data (SQLSTATE class 22) is the
    request's fault: 422 problem+json, through SQLAlchemy and through raw statements alike."""
    db: Database = app.state.db

    async def through_sqlalchemy() -> None:
        async with db.session() as session:
            await session.execute(text("SELECT CAST('not a number' AS integer)"))

    async def through_raw() -> None:
        async with db.session() as session:
            await session.execute(text("SELECT 1"))
            await Statement(text("SELECT CAST(CAST(:v AS text) AS integer)")).fetch(
                session, {"v": "99999999999"}
            )

    app.add_api_route("/v1/test-data-error", through_sqlalchemy, methods=["GET"])
    app.add_api_route("/v1/test-data-error-raw", through_raw, methods=["GET"])
    for path, state in (("/v1/test-data-error", "22P02"), ("/v1/test-data-error-raw", "22003")):
        r = await client.get(path)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/invalid-input") and r.json()["sqlstate"] == state
