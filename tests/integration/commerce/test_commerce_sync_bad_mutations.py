"""One bad mutation in a sync push is rejected alone and the others apply: a client that
resends its queue, as the protocol says, must never be stuck behind one bad entry."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from httpx import AsyncClient

from tests.integration.commerce.conftest import Catalog, Login, customer

ADDRESS = {"name": "Asha", "phone": "+919845012345", "line1": "12 MG Road", "city": "Bengaluru",
           "state": "KA", "pincode": "560001"}  # fmt: skip


def _m(kind: str, **fields: Any) -> dict[str, Any]:
    return {"client_mutation_id": str(uuid.uuid4()), "type": kind, **fields}


async def test_a_mutation_that_fails_validation_is_rejected_alone(
    client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await shop.product(sku="SYNC-OK", stock=10)
    await login(customer())
    push = {
        "mutations": [
            _m("cart.add", sku="SYNC-OK", quantity=1),
            _m("order.place", shipping_address={**ADDRESS, "name": "As\x00ha"}),
            _m("cart.add", sku="SYNC-OK", quantity=2**63),
            _m("cart.set_quantity", sku="SYNC-OK", quantity=3),
        ]
    }
    r = await client.post("/v1/sync/push", json=push)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [(x["status"], x["reason"]) for x in results] == [
        ("applied", None),
        ("rejected", "validation-error"),
        ("rejected", "validation-error"),
        ("applied", None),
    ]
    assert [x["client_mutation_id"] for x in results] == [m["client_mutation_id"] for m in push["mutations"]]
    assert results[1]["data"]["errors"][0]["field"] == "shipping_address.name"
    cart = (await client.get("/v1/cart")).json()
    assert [(x["sku"], x["quantity"]) for x in cart["lines"]] == [("SYNC-OK", 3)]
    # Resent as the protocol says: the applied ones replay, the bad ones are refused again.
    again = (await client.post("/v1/sync/push", json=push)).json()["results"]
    assert [(x["status"], x["replayed"]) for x in again] == [
        ("applied", True),
        ("rejected", False),
        ("rejected", False),
        ("applied", True),
    ]


async def test_a_mutation_the_database_refuses_is_rejected_alone(
    client: AsyncClient, shop: Catalog, login: Login, database_url: str
) -> None:
    """A value PostgreSQL still refuses as data (a trigger raising SQLSTATE 22003 here)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            """
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
        )
    await shop.product(sku="SYNC-DB", stock=10)
    await login(customer())
    push = {
        "mutations": [
            _m("cart.add", sku="SYNC-DB", quantity=1),
            _m("order.place", shipping_address={**ADDRESS, "name": "Poison"}),
            _m("order.place", shipping_address=ADDRESS),
        ]
    }
    r = await client.post("/v1/sync/push", json=push)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [(x["status"], x["reason"]) for x in results] == [
        ("applied", None),
        ("rejected", "invalid-input"),
        ("applied", None),
    ]
    assert "order_id" in results[2]["data"]
