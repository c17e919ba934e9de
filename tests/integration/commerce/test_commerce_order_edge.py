"""`orders.edge`: with group commit on, well-formed `POST /v1/orders` requests are placed before
the framework routes them, and every other request gets exactly the route's answer.

Each refusal is sent to two apps on one database: this one (group commit on, the edge active)
and one with group commit off, where the route answers everything. Their answers must be equal
byte for byte."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from kirana.api import metrics
from kirana.api.app import create_app
from kirana.api.settings import Settings
from tests.integration.access.helpers import Account, signed_in
from tests.integration.commerce.conftest import Catalog, Login, customer

ORDER = {"lines": [{"sku": "OIL-1L", "quantity": 1}]}


@pytest.fixture
async def plain(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A client of the same shop with group commit off: the route answers every order."""
    application = create_app(settings.model_copy(update={"order_batch_max": 0}), handle_signals=False)
    async with application.router.lifespan_context(application):
        assert application.state.order_batcher is None
        transport = ASGITransport(app=application, raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://kirana.test") as c:
            yield c


@pytest.fixture
async def buyer(app: FastAPI, client: AsyncClient) -> Account:
    return await signed_in(app, client)


@pytest.fixture
async def support(app: FastAPI, client: AsyncClient) -> Account:
    """Staff who read orders but may not place them (no `orders:create`)."""
    return await signed_in(app, client, roles=("support",))


def _key() -> str:
    return str(uuid.uuid4())


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


def _cases(buyer: Account, support: Account) -> Iterator[tuple[str, dict[str, str], bytes]]:
    """(what, headers, body) of requests the route must answer itself."""
    js = {"Content-Type": "application/json"}
    ok = {**js, **buyer.headers}
    yield "no token", {**js, "Idempotency-Key": _key()}, _json(ORDER)
    yield "garbage token", {**js, "Authorization": "Bearer nope", "Idempotency-Key": _key()}, _json(ORDER)
    yield "not a bearer", {**js, "Authorization": "Basic dTpw", "Idempotency-Key": _key()}, _json(ORDER)
    yield "no orders:create", {**js, **support.headers, "Idempotency-Key": _key()}, _json(ORDER)
    yield "no key", ok, _json(ORDER)
    yield "malformed key", {**ok, "Idempotency-Key": "short"}, _json(ORDER)
    yield "broken JSON", {**ok, "Idempotency-Key": _key()}, b'{"lines": ['
    yield "empty body", {**ok, "Idempotency-Key": _key()}, b""
    yield "JSON array", {**ok, "Idempotency-Key": _key()}, b"[]"
    yield "no lines", {**ok, "Idempotency-Key": _key()}, _json({"lines": []})
    zero = {"lines": [{"sku": "OIL-1L", "quantity": 0}]}
    yield "zero quantity", {**ok, "Idempotency-Key": _key()}, _json(zero)
    yield "unknown field", {**ok, "Idempotency-Key": _key()}, _json({**ORDER, "price_paise": 1})
    twice = {"lines": [{"sku": "OIL-1L", "quantity": 1}, {"sku": "OIL-1L", "quantity": 2}]}
    yield "SKU twice", {**ok, "Idempotency-Key": _key()}, _json(twice)
    yield "not JSON", {**buyer.headers, "Content-Type": "text/plain", "Idempotency-Key": _key()}, b"hi"
    # Only application/json and application/*+json are parsed as JSON (FastAPI's rule).
    text_json = {**buyer.headers, "Content-Type": "text/x+json", "Idempotency-Key": _key()}
    yield "text/*+json", text_json, _json(ORDER)
    yield "nested too deep to parse", {**ok, "Idempotency-Key": _key()}, b"[" * 5000 + b"]" * 5000


async def test_requests_the_edge_does_not_take_get_the_routes_own_answer(
    app: FastAPI,
    client: AsyncClient,
    plain: AsyncClient,
    shop: Catalog,
    buyer: Account,
    support: Account,
) -> None:
    await shop.product(sku="OIL-1L", stock=5)
    seen = set()
    for what, headers, body in _cases(buyer, support):
        edge = await client.post("/v1/orders", content=body, headers=headers)
        route = await plain.post("/v1/orders", content=body, headers=headers)
        assert edge.status_code == route.status_code, what
        assert edge.content == route.content, what
        for name in ("content-type", "www-authenticate", "retry-after"):
            assert edge.headers.get(name) == route.headers.get(name), (what, name)
        assert edge.headers["content-type"] == "application/problem+json", what
        seen.add(edge.status_code)
    assert seen == {400, 401, 403, 415, 422, 428}
    assert app.state.order_batcher.batches == 0  # none of them reached the batcher


async def test_an_order_through_the_edge_is_answered_and_recorded_as_by_the_route(
    app: FastAPI, client: AsyncClient, plain: AsyncClient, shop: Catalog, buyer: Account
) -> None:
    await shop.product(sku="OIL-1L", price=18_900, stock=5)
    headers = {**buyer.headers, "X-Request-ID": "order-edge-1"}
    edge = await client.post("/v1/orders", json=ORDER, headers={**headers, "Idempotency-Key": _key()})
    route = await plain.post("/v1/orders", json=ORDER, headers={**headers, "Idempotency-Key": _key()})
    assert app.state.order_batcher.batches == 1  # the first went through group commit
    assert edge.status_code == route.status_code == 201
    assert sorted(edge.headers) == sorted(route.headers)  # names: content-length/-type, x-request-id
    assert edge.headers["content-type"] == route.headers["content-type"] == "application/json"
    assert edge.headers["x-request-id"] == "order-edge-1"
    a, b = edge.json(), route.json()
    assert a.keys() == b.keys()
    different = {"id", "number", "created_at", "updated_at", "reservation_expires_at", "lines", "history"}
    assert {k: v for k, v in a.items() if k not in different} == {
        k: v for k, v in b.items() if k not in different
    }
    assert [{**x, "id": None} for x in a["lines"]] == [{**x, "id": None} for x in b["lines"]]
    when = {"created_at": None}
    assert [{**x, **when} for x in a["history"]] == [{**x, **when} for x in b["history"]]
    # Metrics and the access log name the route, as for any routed request.
    exposed = metrics.text()
    assert 'route="/v1/orders",status="201"' in exposed.replace('method="POST",', "")


async def test_every_json_media_type_the_route_parses_is_placed_by_the_edge(
    app: FastAPI, client: AsyncClient, shop: Catalog, buyer: Account
) -> None:
    await shop.product(sku="OIL-1L", stock=5)
    for media in ("application/json", "application/json; charset=utf-8", "application/vnd.kirana+json"):
        headers = {**buyer.headers, "Content-Type": media, "Idempotency-Key": _key()}
        r = await client.post("/v1/orders", content=_json(ORDER), headers=headers)
        assert r.status_code == 201, (media, r.text)
    assert app.state.order_batcher.batches == 3


async def test_a_streamed_body_over_the_limit_is_413_with_or_without_the_edge(
    client: AsyncClient, plain: AsyncClient, settings: Settings, buyer: Account
) -> None:
    """No Content-Length to refuse early: the limit trips while the edge (or, with group commit
    off, the framework, which would turn it into a 400 of its own) reads the body."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"lines": ['
        for _ in range(settings.max_body_bytes // 1024 + 1):
            yield b" " * 1024
        yield b"]}"

    for c in (client, plain):
        headers = {**buyer.headers, "Content-Type": "application/json", "Idempotency-Key": _key()}
        r = await c.post("/v1/orders", content=chunks(), headers=headers)
        assert r.status_code == 413, r.text
        assert r.json()["type"].endswith("/payload-too-large")
        assert r.headers["x-request-id"]


async def test_commerce_clients_signed_in_by_login_take_the_edge_and_group_commit(
    app: FastAPI, client: AsyncClient, shop: Catalog, login: Login
) -> None:
    await shop.product(sku="OIL-1L", stock=5)
    batcher = app.state.order_batcher
    before = batcher.batches
    await login(customer())
    r = await client.post("/v1/orders", json=ORDER, headers={"Idempotency-Key": _key()})
    assert r.status_code == 201, r.text
    assert batcher.batches == before + 1  # placed by a batch, not by the route
