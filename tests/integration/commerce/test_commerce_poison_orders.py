"""Orders carrying text or numbers PostgreSQL cannot store are refused on their own, before
they join a group-commit batch: valid orders sent with them are still placed together."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

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

    before = (await client.get("/metrics")).text
    async with batcher.paused():
        tasks = [asyncio.create_task(call(b)) for b in bodies]
        for _ in range(2000):
            if batcher.queued >= 60:
                break
            await asyncio.sleep(0.005)
    answers = await asyncio.gather(*tasks)
    after = (await client.get("/metrics")).text

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
