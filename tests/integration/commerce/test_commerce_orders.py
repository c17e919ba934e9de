"""Checkout, the order state machine, who sees which orders, and reservation expiry."""

from __future__ import annotations

import uuid

import psycopg
from httpx import AsyncClient

from kirana.api.db.engine import Database
from kirana.api.orders import scheduled
from tests.integration.commerce.conftest import Catalog, Login, customer, idem, staff

PROBLEM = "application/problem+json"


def _stock(database_url: str, sku: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT stock FROM catalog_variants WHERE sku = %s", (sku,)).fetchone()
        assert row is not None
        return int(row[0])


async def _order(client: AsyncClient, sku: str, qty: int = 1) -> dict[str, object]:
    r = await client.post("/v1/orders", json={"lines": [{"sku": sku, "quantity": qty}]}, headers=idem())
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


async def test_checkout_reserves_stock_and_empties_the_cart(
    client: AsyncClient,
    shop: Catalog,
    database_url: str,
    login: Login,
) -> None:
    await shop.product(sku="OIL-1L", price=18_900, mrp=21_000, stock=5, tax_class="gst_5")
    await login(customer())
    await client.post("/v1/cart/lines", json={"sku": "OIL-1L", "quantity": 2})
    assert (await client.post("/v1/checkout", json={})).status_code == 428  # key required
    r = await client.post("/v1/checkout", json={"expected_total_paise": 30_000}, headers=idem())
    assert r.status_code == 409 and r.json()["type"].endswith("price-changed")
    assert r.json()["total_paise"] == 37_800
    assert _stock(database_url, "OIL-1L") == 5  # nothing half-written
    r = await client.post("/v1/checkout", json={"expected_total_paise": 37_800}, headers=idem())
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "pending_payment" and order["total_paise"] == 37_800
    assert order["lines"][0]["unit_price_paise"] == 18_900 and order["reservation_expires_at"]
    assert order["history"][0]["to_status"] == "pending_payment"
    assert _stock(database_url, "OIL-1L") == 3
    assert (await client.get("/v1/cart")).json()["lines"] == []
    r = await client.post("/v1/checkout", json={}, headers=idem())
    assert r.status_code == 409 and "empty" in r.json()["detail"]


async def test_placing_writes_every_row_and_answers_what_a_read_shows(
    client: AsyncClient,
    shop: Catalog,
    database_url: str,
    login: Login,
) -> None:
    kurta = await shop.product(
        sku="KURTA-M",
        price=79_900,
        mrp=99_900,
        stock=4,
        tax_class="gst_12",
        title="Cotton kurta",
        attributes={"size": "M", "colour": "indigo"},
    )
    dal = await shop.product(sku="DAL-1KG", price=14_500, stock=10, tax_class="gst_5", title="Toor dal")
    buyer = await login(customer())
    assert buyer is not None
    body = {
        "lines": [{"sku": "KURTA-M", "quantity": 2}, {"sku": "DAL-1KG", "quantity": 3}],
        "shipping_address": {
            "name": "Asha Rao",
            "line1": "12 MG Road",
            "city": "Bengaluru",
            "state": "KA",
            "pincode": "560001",
            "phone": "+919800000001",
        },
    }
    with psycopg.connect(database_url) as conn:
        before = conn.execute("SELECT coalesce(max(id), 0) FROM sync_changes").fetchone()
    r = await client.post("/v1/orders", json=body, headers=idem())
    assert r.status_code == 201, r.text
    placed = r.json()
    assert [(x["sku"], x["quantity"], x["title"]) for x in placed["lines"]] == [
        ("DAL-1KG", 3, "Toor dal"),
        ("KURTA-M", 2, "Cotton kurta"),
    ]
    assert placed["lines"][1]["attributes"] == {"size": "M", "colour": "indigo"}
    assert placed["total_paise"] == 2 * 79_900 + 3 * 14_500
    assert placed["savings_paise"] == 2 * (99_900 - 79_900)
    assert placed["shipping_address"]["pincode"] == "560001"
    read = await client.get(f"/v1/orders/{placed['id']}")
    assert read.status_code == 200
    assert read.json() == placed  # the answer is exactly what the database now holds
    assert (_stock(database_url, "KURTA-M"), _stock(database_url, "DAL-1KG")) == (2, 7)
    with psycopg.connect(database_url) as conn:
        changes = conn.execute(
            "SELECT entity, entity_id::text, user_id::text FROM sync_changes WHERE id > %s",
            (before[0] if before else 0,),
        ).fetchall()
        events = conn.execute("SELECT topic, key, payload FROM outbox_events").fetchall()
    assert sorted(changes) == sorted(
        [
            ("order", placed["id"], str(buyer.user_id)),
            ("product", str(kurta.product.id), None),
            ("product", str(dal.product.id), None),
        ]
    )
    assert len(events) == 1
    topic, key, payload = events[0]
    assert (topic, key) == ("order.placed", placed["id"])
    assert payload["number"] == placed["number"] and payload["total_paise"] == placed["total_paise"]
    assert payload["user_id"] == str(buyer.user_id) and payload["store_code"] == "main"


async def test_unknown_skus_and_shortages_name_the_lines(
    client: AsyncClient,
    shop: Catalog,
    database_url: str,
    login: Login,
) -> None:
    await shop.product(sku="A-1", stock=1)
    await shop.product(sku="B-1", stock=9)
    await login(customer())
    body = {"lines": [{"sku": "B-1", "quantity": 2}, {"sku": "GHOST-1", "quantity": 1}]}
    r = await client.post("/v1/orders", json=body, headers=idem())
    assert r.status_code == 422 and r.json()["skus"] == ["GHOST-1"]
    body = {"lines": [{"sku": "B-1", "quantity": 2}, {"sku": "A-1", "quantity": 3}]}
    r = await client.post("/v1/orders", json=body, headers=idem())
    assert r.status_code == 409 and r.json()["lines"] == [{"sku": "A-1", "requested": 3, "available": 1}]
    assert _stock(database_url, "B-1") == 9  # the good line was not taken either
    dup = {"lines": [{"sku": "B-1", "quantity": 1}, {"sku": "B-1", "quantity": 1}]}
    assert (await client.post("/v1/orders", json=dup, headers=idem())).status_code == 422
    assert (await client.post("/v1/orders", json={"lines": []}, headers=idem())).status_code == 422


async def test_state_machine_records_who_and_when(
    client: AsyncClient,
    shop: Catalog,
    database_url: str,
    login: Login,
) -> None:
    await shop.product(sku="SAREE-1", stock=3)
    buyer = await login(customer())
    assert buyer is not None
    order = await _order(client, "SAREE-1")
    oid = order["id"]
    clerk = await login(staff(scopes=frozenset({"store:main"})))
    assert clerk is not None
    for status in ("paid", "packed", "shipped", "out_for_delivery", "delivered"):
        r = await client.post(f"/v1/orders/{oid}/transitions", json={"status": status})
        assert r.status_code == 200, r.text
    history = r.json()["history"]
    assert [h["to_status"] for h in history] == [
        "pending_payment",
        "paid",
        "packed",
        "shipped",
        "out_for_delivery",
        "delivered",
    ]
    assert history[0]["actor_id"] == str(buyer.user_id) and history[0]["actor_kind"] == "customer"
    assert all(h["actor_id"] == str(clerk.user_id) and h["actor_kind"] == "staff" for h in history[1:])
    assert all(h["created_at"] for h in history)
    r = await client.post(f"/v1/orders/{oid}/transitions", json={"status": "packed"})
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert (await client.post(f"/v1/orders/{oid}/transitions", json={"status": "lost"})).status_code == 422
    # Refunds need orders:refund.
    await login(staff(permissions=frozenset({"orders:read_all", "orders:update_status"})))
    assert (
        await client.post(f"/v1/orders/{oid}/transitions", json={"status": "refunded"})
    ).status_code == 403
    await login(staff())
    assert (
        await client.post(f"/v1/orders/{oid}/transitions", json={"status": "refunded"})
    ).status_code == 200
    assert _stock(database_url, "SAREE-1") == 2  # delivered goods are not restocked


async def test_refunds_need_a_recent_step_up(client: AsyncClient, shop: Catalog, login: Login) -> None:
    await shop.product(sku="TV-1", stock=3)
    await login(customer())
    oid = (await _order(client, "TV-1"))["id"]
    await login(staff())
    for status in ("paid", "packed", "shipped", "out_for_delivery", "delivered"):
        r = await client.post(f"/v1/orders/{oid}/transitions", json={"status": status})
        assert r.status_code == 200, r.text
    # Full refund rights, but no two-factor verification in this session: refused on both routes.
    await login(staff(stepped_up=False))
    for path, body in (
        (f"/v1/orders/{oid}/refund", {}),
        (f"/v1/orders/{oid}/transitions", {"status": "refunded"}),
    ):
        r = await client.post(path, json=body, headers=idem())
        assert r.status_code == 401, r.text
        assert r.json()["reason"] == "step-up-required"
        assert "insufficient_user_authentication" in r.headers["WWW-Authenticate"]
    # A step-up without the permission is not enough either.
    await login(staff(permissions=frozenset({"orders:read_all", "orders:update_status"})))
    assert (await client.post(f"/v1/orders/{oid}/refund", json={}, headers=idem())).status_code == 403
    await login(staff())
    r = await client.post(f"/v1/orders/{oid}/refund", json={"reason": "damaged in transit"}, headers=idem())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refunded"
    assert r.json()["history"][-1]["reason"] == "damaged in transit"
    r = await client.post(f"/v1/orders/{oid}/refund", json={}, headers=idem())
    assert r.status_code == 409  # refunded once is refunded


async def test_cancellation_releases_stock_and_customers_cannot_ship(
    client: AsyncClient,
    shop: Catalog,
    database_url: str,
    login: Login,
) -> None:
    await shop.product(sku="KURTA-1", stock=4)
    await login(customer())
    oid = (await _order(client, "KURTA-1", 3))["id"]
    assert _stock(database_url, "KURTA-1") == 1
    r = await client.post(f"/v1/orders/{oid}/transitions", json={"status": "paid"})
    assert r.status_code == 409  # customers cannot mark their own order paid
    r = await client.post(
        f"/v1/orders/{oid}/transitions", json={"status": "cancelled", "reason": "ordered twice"}
    )
    assert r.status_code == 200 and r.json()["history"][-1]["reason"] == "ordered twice"
    assert _stock(database_url, "KURTA-1") == 4
    r = await client.post(f"/v1/orders/{oid}/transitions", json={"status": "refunded"})
    assert r.status_code in (403, 409)
    await login(staff())
    r = await client.post(f"/v1/orders/{oid}/transitions", json={"status": "refunded"})
    assert r.status_code == 409 and "never paid" in r.json()["detail"]


async def test_customers_see_only_their_orders_and_staff_their_stores(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await shop.product(sku="CHAI-1", stock=50)
    await login(customer())
    mine = await _order(client, "CHAI-1")
    r = await client.post(
        "/v1/orders",
        json={"lines": [{"sku": "CHAI-1", "quantity": 1}], "store_code": "blr-1"},
        headers=idem(),
    )
    blr = r.json()
    assert [o["id"] for o in (await client.get("/v1/orders")).json()["items"]] == [blr["id"], mine["id"]]
    await login(customer())
    assert (await client.get(f"/v1/orders/{mine['id']}")).status_code == 404
    assert (await client.get("/v1/orders")).json()["items"] == []
    assert (await client.get("/v1/staff/orders")).status_code == 403
    r = await client.post(f"/v1/orders/{mine['id']}/transitions", json={"status": "cancelled"})
    assert r.status_code == 404

    await login(staff(scopes=frozenset({"store:blr-1"})))
    assert [o["id"] for o in (await client.get("/v1/staff/orders")).json()["items"]] == [blr["id"]]
    assert (await client.get(f"/v1/orders/{mine['id']}")).status_code == 404
    assert (await client.get(f"/v1/orders/{blr['id']}")).status_code == 200
    await login(staff())
    assert len((await client.get("/v1/staff/orders")).json()["items"]) == 2
    page = (await client.get("/v1/staff/orders", params={"limit": 1})).json()
    rest = (await client.get("/v1/staff/orders", params={"limit": 1, "cursor": page["next_cursor"]})).json()
    assert page["items"][0]["id"] != rest["items"][0]["id"] and rest["next_cursor"] is None


async def test_unpaid_orders_expire_and_release_their_stock(
    client: AsyncClient,
    shop: Catalog,
    db: Database,
    database_url: str,
    login: Login,
) -> None:
    await shop.product(sku="PHONE-1", stock=2)
    await login(customer())
    stale = await _order(client, "PHONE-1")
    fresh = await _order(client, "PHONE-1")
    paid = None
    assert _stock(database_url, "PHONE-1") == 0
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE orders SET reservation_expires_at = now() - interval '1 minute' WHERE id = %s",
            (uuid.UUID(str(stale["id"])),),
        )
    assert await scheduled.expire_reservations(db) == 1
    assert await scheduled.expire_reservations(db) == 0
    assert _stock(database_url, "PHONE-1") == 1
    got = (await client.get(f"/v1/orders/{stale['id']}")).json()
    assert got["status"] == "expired" and got["history"][-1]["actor_kind"] == "system"
    assert (await client.get(f"/v1/orders/{fresh['id']}")).json()["status"] == "pending_payment"
    await login(staff())
    r = await client.post(f"/v1/orders/{stale['id']}/transitions", json={"status": "paid"})
    assert r.status_code == 409 and paid is None


async def test_the_worker_registers_the_expiry_job() -> None:
    from kirana.workers.main import JOBS

    assert {"orders.expire_reservations", "sync.stamp_changes"} <= {j.name for j in JOBS}
