"""Saved methods: Razorpay customers and tokens, listed with display fields only, deleted here
and at Razorpay, reachable only by their owner."""

from __future__ import annotations

from httpx import AsyncClient

from kirana.api.devrazorpay.server import FakeServer
from tests.integration.commerce.conftest import Catalog, customer
from tests.integration.payments.conftest import place, start


async def test_saved_methods_are_the_owners_only_and_delete_at_razorpay(
    client: AsyncClient, login, shop: Catalog, fake: FakeServer
) -> None:
    await shop.product(sku="SAVE-1", price=20_000, stock=5)
    owner = customer()
    await login(owner)
    assert (await client.get("/v1/me/payment-methods")).json() == {"razorpay_customer_id": None, "items": []}
    cid = (await client.post("/v1/me/payment-methods/customer")).json()["razorpay_customer_id"]
    assert cid.startswith("cust_")
    co = await start(client, (await place(client, "SAVE-1"))["id"])
    assert co["customer_id"] == cid  # Checkout offers the saved methods
    fake.account.pay(co["razorpay_order_id"], method="card", customer_id=cid, save=True)
    fake.account.pay(
        co["razorpay_order_id"], method="upi", vpa="ravikumar@okhdfc", customer_id=cid, save=True
    )
    listed = (await client.get("/v1/me/payment-methods")).json()["items"]
    labels = sorted(m["label"] for m in listed)
    assert labels == ["Visa •••• 1111", "ra*******@okhdfc"]
    assert "4111" not in str(listed) and "ravikumar" not in str(listed)
    card = next(m for m in listed if m["method"] == "card")

    await login(customer())  # someone else
    assert (await client.get("/v1/me/payment-methods")).json()["items"] == []
    assert (await client.delete(f"/v1/me/payment-methods/{card['token_id']}")).status_code == 404
    assert card["token_id"] in fake.account.tokens

    await login(owner)
    assert (await client.delete(f"/v1/me/payment-methods/{card['token_id']}")).status_code == 204
    assert card["token_id"] not in fake.account.tokens
    assert len((await client.get("/v1/me/payment-methods")).json()["items"]) == 1
