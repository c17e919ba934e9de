"""The API skeleton as a client sees it: health, problem+json errors, request ids, metrics."""

from __future__ import annotations

import gc

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from pydantic import BaseModel, Field

from kirana.api import metrics
from kirana.api.app import create_app
from kirana.api.settings import Settings

PROBLEM = "application/problem+json"


async def test_livez_and_readyz_report_ok(client: AsyncClient) -> None:
    assert (await client.get("/livez")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}


async def test_readyz_fails_when_redis_is_unreachable(settings: Settings) -> None:
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(broken, handle_signals=False)
    from httpx import ASGITransport

    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as c,
    ):
        r = await c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["postgres"] == "ok"
    assert r.json()["checks"]["redis"].startswith("failed")


async def test_readyz_fails_while_draining(app: FastAPI, client: AsyncClient) -> None:
    app.state.draining = True
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["shutdown"] == "draining"
    assert (await client.get("/livez")).status_code == 200


async def test_unknown_route_is_problem_json(client: AsyncClient) -> None:
    r = await client.get("/no/such/thing")
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == 404 and body["title"] == "Not Found"
    assert "/no/such/thing" in body["detail"]


async def test_wrong_method_is_405_problem(client: AsyncClient) -> None:
    r = await client.delete("/livez")
    assert r.status_code == 405
    assert r.headers["content-type"] == PROBLEM
    assert "DELETE" in r.json()["detail"]


class Item(BaseModel):
    name: str = Field(min_length=1)
    qty: int = Field(gt=0)


def _add_echo(app: FastAPI) -> None:
    async def echo(item: Item) -> Item:
        return item

    app.add_api_route("/echo", echo, methods=["POST"])


async def test_validation_errors_list_field_paths(app: FastAPI, client: AsyncClient) -> None:
    _add_echo(app)
    r = await client.post("/echo", json={"name": "", "qty": -1})
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"body.name", "body.qty"}


async def test_non_json_body_is_415(app: FastAPI, client: AsyncClient) -> None:
    _add_echo(app)
    r = await client.post("/echo", content=b"name=x", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert r.headers["content-type"] == PROBLEM
    assert "text/plain" in r.json()["detail"]


async def test_oversized_body_is_413(app: FastAPI, client: AsyncClient, settings: Settings) -> None:
    _add_echo(app)
    big = b'{"name": "' + b"x" * (settings.max_body_bytes + 10) + b'", "qty": 1}'
    r = await client.post("/echo", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM


async def test_unhandled_error_is_500_without_internals(
    app: FastAPI, client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom() -> None:
        raise RuntimeError("secret connection string postgres://u:p@db")

    app.add_api_route("/boom", boom)
    r = await client.get("/boom", headers={"X-Request-ID": "req-123"})
    assert r.status_code == 500
    assert r.headers["content-type"] == PROBLEM
    assert "secret" not in r.text and "postgres://" not in r.text
    assert r.json()["request_id"] == "req-123"
    assert r.headers["x-request-id"] == "req-123"
    logged = [rec for rec in caplog.records if rec.getMessage() == "unhandled error"]
    assert logged and logged[0].request_id == "req-123"  # type: ignore[attr-defined]
    assert logged[0].exc_info is not None  # the traceback goes to the log, not the client


async def test_request_id_generated_when_missing_or_malformed(client: AsyncClient) -> None:
    generated = (await client.get("/livez")).headers["x-request-id"]
    assert len(generated) == 32
    replaced = (await client.get("/livez", headers={"X-Request-ID": "bad id\twith spaces"})).headers
    assert replaced["x-request-id"] != "bad id\twith spaces"


async def test_metrics_label_route_template_method_and_status(app: FastAPI, client: AsyncClient) -> None:
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    app.add_api_route("/items/{item_id}", item)
    for i in range(3):
        assert (await client.get(f"/items/{i}")).status_code == 200
    await client.get("/items/not-a-number")
    text = metrics.text()
    assert 'kirana_http_requests_total{method="GET",route="/items/{item_id}",status="200"}' in text
    assert 'route="/items/{item_id}",status="422"' in text
    assert "kirana_http_request_duration_seconds_bucket" in text
    assert "kirana_db_pool_connections_open" in text


async def test_openapi_is_served(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["info"]["title"] == "Kirana"
    assert "/readyz" in spec["paths"]


async def test_startup_objects_are_frozen_out_of_full_collections_until_shutdown(settings: Settings) -> None:
    app = create_app(settings, handle_signals=False)
    async with app.router.lifespan_context(app):
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # modules, mappers, schemas and routes: never walked again
    assert gc.get_freeze_count() == 0  # and collectable again once the app has stopped
