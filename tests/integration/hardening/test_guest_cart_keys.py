"""Idempotency keys of callers with nothing to scope them to (a guest starting a cart) are not
shared between callers, and no stored answer carries the cart's secret token."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from kirana.api.idempotency.models import IdempotencyKey


async def test_a_second_guest_with_the_same_key_gets_no_token_of_the_first(
    client: AsyncClient, app: FastAPI
) -> None:
    key = {"Idempotency-Key": "device-1234-fixed-key"}
    first = await client.post("/v1/carts", headers=key)
    assert first.status_code == 201, first.text
    async with AsyncClient(
        transport=ASGITransport(app=app, client=("198.51.100.77", 41000)), base_url="http://t"
    ) as other:
        second = await other.post("/v1/carts", headers=key)
    assert second.status_code == 201, second.text
    assert second.headers.get("Idempotent-Replayed") is None
    assert second.json()["token"] != first.json()["token"]
    assert second.json()["cart"]["id"] != first.json()["cart"]["id"]
    async with app.state.db.session() as s:
        bodies = (await s.scalars(select(IdempotencyKey.response_body))).all()
    for token in (first.json()["token"], second.json()["token"]):
        assert all(token.encode() not in (b or b"") for b in bodies)
