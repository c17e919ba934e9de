"""Account abuse paths found by an outside review: a lockout that counted per identifier only,
and a replayed sign-in challenge that spent a code before it was refused."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from tests.integration.access.helpers import PASSWORD, enrol_totp, make_user, signed_in


async def test_a_locked_account_gets_no_fresh_guesses_through_its_other_identifier(
    client: AsyncClient, app: FastAPI
) -> None:
    account = await make_user(app, phone="+919845099001")
    for _ in range(5):
        r = await client.post(
            "/v1/auth/login", json={"identifier": account.email, "password": "guess-guess-1"}
        )
        assert r.status_code == 401
    r = await client.post("/v1/auth/login", json={"identifier": account.email, "password": "guess-guess-1"})
    assert r.status_code == 429
    # The same account through its phone number, from the same address: still locked.
    r = await client.post("/v1/auth/login", json={"identifier": "+919845099001", "password": "guess-guess-2"})
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    r = await client.post("/v1/auth/login", json={"identifier": "+919845099001", "password": PASSWORD})
    assert r.status_code == 429


async def test_a_replayed_completed_challenge_is_refused_before_the_code_is_spent(
    client: AsyncClient, app: FastAPI
) -> None:
    account = await enrol_totp(client, await signed_in(app, client))
    r = await client.post("/v1/auth/login", json={"identifier": account.email, "password": PASSWORD})
    challenge = r.json()["challenge"]
    first, second = account.recovery_codes[0], account.recovery_codes[1]
    r = await client.post(
        "/v1/auth/login/2fa", json={"challenge": challenge, "method": "recovery", "code": first}
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        "/v1/auth/login/2fa", json={"challenge": challenge, "method": "recovery", "code": second}
    )
    assert r.status_code == 401
    status = (await client.get("/v1/auth/2fa", headers=account.headers)).json()
    assert status["recovery_codes_left"] == 9  # the replay did not burn the second code
    # ... which still works in a new sign-in.
    r = await client.post("/v1/auth/login", json={"identifier": account.email, "password": PASSWORD})
    r = await client.post(
        "/v1/auth/login/2fa", json={"challenge": r.json()["challenge"], "method": "recovery", "code": second}
    )
    assert r.status_code == 200, r.text
