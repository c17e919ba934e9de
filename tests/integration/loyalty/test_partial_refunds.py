"""A staff refund through the payments route (real SDK, fake Razorpay) reverses the refunded
share of the order's points, and the full refund the rest, never more than the order earned."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import AsyncClient

from kirana.api.db.engine import Database
from kirana.api.devrazorpay.server import FakeServer
from kirana.api.loyalty import awards, leaderboards
from kirana.api.loyalty import service as loyalty
from kirana.api.orders.states import Status
from kirana.api.settings import LoyaltySettings
from tests.integration.commerce.conftest import STAFF, Catalog, Login, customer, staff
from tests.integration.payments.conftest import fake, pay, settings, start  # noqa: F401

from .conftest import DELIVERY, Worker, move, place

REFUNDER = STAFF | {"payments:refund"}


async def _paid_order(
    client: AsyncClient,
    login: Login,
    shop: Catalog,
    fake: FakeServer,  # noqa: F811
) -> tuple[Any, dict[str, Any]]:
    """A customer signed in and their order of two units at ₹1,050 paid (it earns 200 points)."""
    buyer = await login(customer())
    assert buyer is not None
    order = await place(client, (await shop.product(price=105_000, stock=5)).variants[0].sku, qty=2)
    co = await start(client, order["id"])
    assert (
        await client.post("/v1/payments/verify", json=pay(fake, co["razorpay_order_id"]))
    ).status_code == 200
    return buyer, order


async def test_partial_refunds_reverse_their_share_and_the_full_refund_the_rest(
    client: AsyncClient,
    login: Login,
    shop: Catalog,
    db: Database,
    worker: Worker,
    fake: FakeServer,  # noqa: F811
) -> None:
    buyer, order = await _paid_order(client, login, shop, fake)
    await move(db, order["id"], *DELIVERY)
    await worker.pump()
    assert (await client.get("/v1/loyalty/me")).json()["balance"] == 200

    path = f"/v1/orders/{order['id']}/payments/refunds"
    await login(staff(permissions=REFUNDER))
    quarter = order["total_paise"] // 4
    r = await client.post(
        path, json={"amount_paise": quarter}, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 200, r.text
    await worker.pump()
    await worker.pump()  # a replay reverses nothing more
    await login(buyer)
    assert (await client.get("/v1/loyalty/me")).json()["balance"] == 150

    await login(staff(permissions=REFUNDER))
    r = await client.post(path, json={}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 200 and r.json()["order_status"] == Status.refunded.value
    await worker.pump()
    await login(buyer)
    body = (await client.get("/v1/loyalty/me")).json()
    assert (body["balance"], body["debt"]) == (0, 0)
    entries = (await client.get("/v1/loyalty/me/ledger")).json()["items"]
    assert [(e["kind"], e["points"]) for e in entries] == [("reverse", -150), ("reverse", -50), ("earn", 200)]
    async with db.session() as s:
        assert await loyalty.verify(s) == []
        assert await leaderboards.check(s, worker.redis) == []


async def test_a_part_refunded_before_delivery_is_taken_off_when_the_points_are_credited(
    client: AsyncClient,
    login: Login,
    shop: Catalog,
    db: Database,
    worker: Worker,
    fake: FakeServer,  # noqa: F811
) -> None:
    buyer, order = await _paid_order(client, login, shop, fake)
    await move(db, order["id"], Status.packed)
    await worker.pump()
    assert (await client.get("/v1/loyalty/me")).json()["pending"] == 200

    await login(staff(permissions=REFUNDER))  # one line of two refunded while it is packed
    r = await client.post(
        f"/v1/orders/{order['id']}/payments/refunds",
        json={"amount_paise": order["total_paise"] // 4},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 200, r.text
    await worker.pump()
    await move(db, order["id"], *DELIVERY[1:])
    await worker.pump()
    async with db.session() as s:  # the events handled again (a redelivery) change nothing
        assert (
            await awards.on_delivered(s, order_id=uuid.UUID(order["id"]), settings=LoyaltySettings()) is None
        )
        assert await awards.on_partial_refund(s, order_id=uuid.UUID(order["id"])) is None

    await login(buyer)
    body = (await client.get("/v1/loyalty/me")).json()
    assert (body["balance"], body["pending"]) == (150, 0)
    entries = (await client.get("/v1/loyalty/me/ledger")).json()["items"]
    assert [(e["kind"], e["points"]) for e in entries] == [("reverse", -50), ("earn", 200)]
    async with db.session() as s:
        assert await loyalty.verify(s) == []
        assert await leaderboards.check(s, worker.redis) == []
