"""The /v1/loyalty routes' access rules and refusals, as problem+json, with real bearer tokens."""

from __future__ import annotations

import uuid

from httpx import AsyncClient, Response
from sqlalchemy import select, update

from kirana.api.audit.models import AuditEvent
from kirana.api.db.engine import Database
from kirana.api.loyalty import service as loyalty
from kirana.api.loyalty.models import Account
from tests.integration.commerce.conftest import Catalog, Login, customer, idem, staff

from .conftest import place

ADJUSTER = frozenset({"loyalty:adjust", "loyalty:read_all"})


def problem(r: Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = r.json()
    assert str(body["type"]).endswith(code), body
    return body


async def test_redemption_refusals(client: AsyncClient, login: Login, shop: Catalog, db: Database) -> None:
    owner = await login(customer())
    assert owner is not None
    order = await place(client, (await shop.product(price=10_000, stock=5)).variants[0].sku)
    async with db.session() as s:
        await loyalty.post(s, user_id=owner.user_id, kind="adjust", points=1_000, source="test:grant")

    # More than the order allows: 20% of ₹100 at 10 paise a point is 200 points.
    body = problem(
        await client.post("/v1/loyalty/redemptions", json={"order_id": order["id"], "points": 201}),
        422,
        "redemption-exceeds-limit",
    )
    assert body["max_points"] == 200

    other = await login(customer())
    assert other is not None
    # Someone else's order: the same answer as an order that does not exist.
    problem(
        await client.post("/v1/loyalty/redemptions", json={"order_id": order["id"], "points": 10}),
        404,
        "not-found",
    )
    problem(
        await client.post("/v1/loyalty/redemptions", json={"order_id": str(uuid.uuid4()), "points": 10}),
        404,
        "not-found",
    )
    await login(None)
    problem(await client.get("/v1/loyalty/me"), 401, "unauthorized")

    await login(owner)
    r = await client.post("/v1/loyalty/redemptions", json={"order_id": order["id"], "points": 150})
    assert r.status_code == 201 and r.json()["balance"] == 850
    again = await client.post("/v1/loyalty/redemptions", json={"order_id": order["id"], "points": 150})
    assert again.status_code == 201 and again.json()["balance"] == 850  # one hold per order
    assert (await client.delete(f"/v1/loyalty/redemptions/{order['id']}")).status_code == 204
    assert (await client.get("/v1/loyalty/me")).json()["balance"] == 1_000
    problem(await client.delete(f"/v1/loyalty/redemptions/{order['id']}"), 404, "not-found")
    # Taken off, they do not go on again (the answer must not read as points applied).
    problem(
        await client.post("/v1/loyalty/redemptions", json={"order_id": order["id"], "points": 150}),
        409,
        "redemption-closed",
    )


async def test_more_than_the_balance_is_refused(client: AsyncClient, login: Login, shop: Catalog) -> None:
    await login(customer())
    order = await place(client, (await shop.product(price=10_000, stock=5)).variants[0].sku)
    body = problem(
        await client.post("/v1/loyalty/redemptions", json={"order_id": order["id"], "points": 50}),
        422,
        "points-insufficient",
    )
    assert (body["balance"], body["requested"]) == (0, 50)


async def test_staff_adjustments_need_the_permission_a_step_up_and_are_audited(
    client: AsyncClient, login: Login, db: Database
) -> None:
    buyer = await login(customer())
    assert buyer is not None
    url = f"/v1/loyalty/customers/{buyer.user_id}/adjustments"
    problem(
        await client.post(url, json={"points": 50, "reason": "goodwill"}, headers=idem()), 403, "forbidden"
    )

    await login(staff(permissions=ADJUSTER, stepped_up=False))
    problem(
        await client.post(url, json={"points": 50, "reason": "goodwill"}, headers=idem()), 401, "unauthorized"
    )

    adjuster = await login(staff(permissions=ADJUSTER))
    assert adjuster is not None
    key = idem()
    r = await client.post(url, json={"points": 50, "reason": "goodwill"}, headers=key)
    assert r.status_code == 200, r.text
    assert r.json()["balance"] == 50
    replay = await client.post(url, json={"points": 50, "reason": "goodwill"}, headers=key)
    assert replay.json()["balance"] == 50  # the same key applies once
    body = problem(
        await client.post(url, json={"points": -80, "reason": "clawback"}, headers=idem()),
        422,
        "points-insufficient",
    )
    assert body["balance"] == 50
    problem(
        await client.post(
            f"/v1/loyalty/customers/{uuid.uuid4()}/adjustments",
            json={"points": 5, "reason": "x" * 3},
            headers=idem(),
        ),
        404,
        "not-found",
    )

    ledger = (await client.get(f"/v1/loyalty/customers/{buyer.user_id}/ledger")).json()["items"]
    assert [(e["kind"], e["points"]) for e in ledger] == [("adjust", 50)]
    async with db.session() as s:
        events = (
            await s.scalars(select(AuditEvent).where(AuditEvent.action == "loyalty.points_adjusted"))
        ).all()
    assert [(e.actor_id, e.target_id, e.after["points"]) for e in events] == [  # type: ignore[index]
        (adjuster.user_id, str(buyer.user_id), 50)
    ]


async def test_history_pages_with_a_cursor(client: AsyncClient, login: Login, db: Database) -> None:
    buyer = await login(customer())
    assert buyer is not None
    async with db.session() as s:
        for i in range(5):
            await loyalty.post(s, user_id=buyer.user_id, kind="adjust", points=i + 1, source=f"test:{i}")
    first = (await client.get("/v1/loyalty/me/ledger", params={"limit": 3})).json()
    second = (
        await client.get("/v1/loyalty/me/ledger", params={"limit": 3, "cursor": first["next_cursor"]})
    ).json()
    assert [e["points"] for e in first["items"] + second["items"]] == [5, 4, 3, 2, 1]
    assert second["next_cursor"] is None
    problem(await client.get("/v1/loyalty/me/ledger", params={"cursor": "garbage"}), 422, "invalid-input")


async def test_campaigns_crud_with_store_scopes(client: AsyncClient, login: Login, db: Database) -> None:
    window = {"starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-12-31T00:00:00Z"}
    await login(customer())
    problem(await client.post("/v1/loyalty/campaigns", json={"name": "Diwali", **window}), 403, "forbidden")

    await login(staff(permissions=frozenset({"loyalty:manage"}), scopes=frozenset({"store:blr-1"})))
    problem(
        await client.post(
            "/v1/loyalty/campaigns",
            json={
                "name": "Backwards",
                "store_code": "blr-1",
                "starts_at": window["ends_at"],
                "ends_at": window["starts_at"],
            },
        ),
        422,
        "campaign-window-invalid",
    )
    problem(
        await client.post("/v1/loyalty/campaigns", json={"name": "Shop-wide", **window}), 403, "forbidden"
    )
    problem(
        await client.post(
            "/v1/loyalty/campaigns", json={"name": "Elsewhere", "store_code": "dl-1", **window}
        ),
        403,
        "forbidden",
    )
    r = await client.post(
        "/v1/loyalty/campaigns",
        json={
            "name": "Atta week",
            "store_code": "blr-1",
            "category": "atta",
            "bonus_per_100_rupees": 5,
            **window,
        },
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    problem(
        await client.patch(f"/v1/loyalty/campaigns/{cid}", json={"ends_at": "2026-11-01T00:00:00Z"}),
        422,
        "campaign-window-invalid",
    )
    r = await client.patch(f"/v1/loyalty/campaigns/{cid}", json={"multiplier_percent": 200})
    assert r.status_code == 200 and r.json()["multiplier_percent"] == 200

    await login(staff(permissions=frozenset({"loyalty:manage"}), scopes=frozenset({"store:dl-1"})))
    problem(await client.get(f"/v1/loyalty/campaigns/{cid}"), 404, "not-found")
    assert (await client.get("/v1/loyalty/campaigns")).json()["items"] == []

    await login(staff(permissions=frozenset({"loyalty:manage"})))
    assert [c["name"] for c in (await client.get("/v1/loyalty/campaigns")).json()["items"]] == ["Atta week"]
    assert (await client.delete(f"/v1/loyalty/campaigns/{cid}")).status_code == 204
    async with db.session() as s:
        actions = (
            await s.scalars(select(AuditEvent.action).where(AuditEvent.action.like("loyalty.campaign_%")))
        ).all()
    assert sorted(actions) == [
        "loyalty.campaign_created",
        "loyalty.campaign_deleted",
        "loyalty.campaign_updated",
    ]


async def test_a_live_campaign_and_the_tier_raise_what_an_order_earns(
    client: AsyncClient, login: Login, shop: Catalog, db: Database
) -> None:
    from kirana.api.loyalty import awards
    from kirana.api.orders.states import Status
    from kirana.api.settings import LoyaltySettings

    from .conftest import move

    await login(staff(permissions=frozenset({"loyalty:manage"})))
    await shop.brand("amul")
    r = await client.post(
        "/v1/loyalty/campaigns",
        json={
            "name": "Amul",
            "brand": "amul",
            "bonus_per_100_rupees": 10,
            "starts_at": "2026-01-01T00:00:00Z",
        },
    )
    assert r.status_code == 201, r.text
    buyer = await login(customer())
    assert buyer is not None
    amul = (await shop.product(price=105_000, stock=5, brand="amul")).variants[0].sku
    order = await place(client, amul)
    await move(db, order["id"], Status.paid)
    async with db.session() as s:
        await loyalty.ensure_account(s, user_id=buyer.user_id)
        await s.execute(update(Account).where(Account.user_id == buyer.user_id).values(tier="gold"))
        assert await awards.on_paid(s, order_id=uuid.UUID(order["id"]), settings=LoyaltySettings())
    # ₹1,000 before tax at 10 + 10 points per ₹100, times gold's 150%.
    assert (await client.get("/v1/loyalty/me")).json()["pending"] == 300
