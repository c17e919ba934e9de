"""What the document promises about headers, checked on the real app: `Allow` on 405 names
every method of the path, 401 carries `WWW-Authenticate`, every answer an `X-Request-ID`, and
a required Idempotency-Key is refused with 428 before anything runs."""

from __future__ import annotations

import uuid

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


async def test_allow_names_only_methods_whose_route_takes_the_path(client: AsyncClient) -> None:
    """Found by schemathesis: `/v1/auth/sessions/revoke-all` also fits the pattern of `DELETE
    /v1/auth/sessions/{session_id}`, so `Allow` named DELETE, which answers 422 there."""
    r = await client.request("OPTIONS", "/v1/auth/sessions/revoke-all")
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"POST"}
    r = await client.request("OPTIONS", f"/v1/auth/sessions/{uuid.uuid4()}")
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"DELETE"}
    # Only an id takes the parameter's place: a method the literal path lacks is a 405, not a 422
    for path, allow in (
        ("/v1/auth/sessions/revoke-all", "POST"),
        ("/v1/me/payment-methods/customer", "POST"),
    ):
        r = await client.delete(path)
        assert r.status_code == 405, r.text
        assert r.headers["allow"] == allow


async def test_loyalty_answers_what_its_document_lists(app: FastAPI, client: AsyncClient) -> None:
    """Found by schemathesis: redeeming on an unknown order answered an undocumented 404; a
    preference of `0` was taken for `false`; a leaderboard scope's pattern was not in the document."""
    from tests.integration.access.helpers import signed_in

    doc = app.openapi()["paths"]
    account = await signed_in(app, client)
    r = await client.post(
        "/v1/loyalty/redemptions", headers=account.headers, json={"order_id": str(uuid.uuid4()), "points": 10}
    )
    assert r.status_code == 404 and r.json()["type"] == "https://kirana.dev/problems/not-found"
    assert "404" in doc["/v1/loyalty/redemptions"]["post"]["responses"]

    r = await client.put(
        "/v1/loyalty/me/leaderboard-preference", headers=account.headers, json={"leaderboard_opt_out": 0}
    )
    assert r.status_code == 422 and r.json()["type"] == "https://kirana.dev/problems/validation-error"
    r = await client.post("/v1/auth/sessions/revoke-all", headers=account.headers, json={"keep_current": 0})
    assert r.status_code == 422 and r.json()["type"] == "https://kirana.dev/problems/validation-error"

    params = doc["/v1/loyalty/leaderboards/{period}"]["get"]["parameters"]
    scope = next(p for p in params if p["name"] == "scope")
    assert "pattern" in scope["schema"]
    r = await client.get("/v1/loyalty/leaderboards/week?scope=000", headers=account.headers)
    assert r.status_code == 422 and r.json()["type"] == "https://kirana.dev/problems/validation-error"


async def test_bounds_dates_and_required_keys_are_what_the_document_says(
    app: FastAPI, client: AsyncClient
) -> None:
    """Found by schemathesis: integer bounds went out as floats (`maximum` 2^63, one past what a
    `bigint` holds); `until=0.5` was taken as Unix seconds though the document says date-time;
    loyalty adjustments refused a missing Idempotency-Key with a 428 the document did not list."""
    from tests.integration.access.helpers import signed_in

    doc = app.openapi()
    position = doc["components"]["schemas"]["CategoryUpdate"]["properties"]["position"]["anyOf"][0]
    assert position["maximum"] == 2**63 - 1 and isinstance(position["maximum"], int)

    owner = await signed_in(app, client, roles=("owner",), totp=True)
    r = await client.get("/v1/audit/events?until=0.5", headers=owner.headers)
    assert r.status_code == 422 and r.json()["type"] == "https://kirana.dev/problems/validation-error"
    r = await client.get("/v1/audit/events?until=2026-01-31T18:30:00Z", headers=owner.headers)
    assert r.status_code == 200, r.text

    adjust = doc["paths"]["/v1/loyalty/customers/{user_id}/adjustments"]["post"]
    key = next(p for p in adjust["parameters"] if p["name"] == "Idempotency-Key")
    assert key["required"] is True and "428" in adjust["responses"]
