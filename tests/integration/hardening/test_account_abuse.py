"""Account abuse paths found by an outside review: a lockout that counted per identifier only,
and a replayed sign-in challenge that spent a code before it was refused."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from tests.integration.access.helpers import PASSWORD, enrol_totp, make_user, signed_in


async def _attempts(client: AsyncClient, identifier: str, passwords: list[str]) -> list[tuple[int, str, str]]:
    seen = []
    for password in passwords:
        r = await client.post("/v1/auth/login", json={"identifier": identifier, "password": password})
        seen.append((r.status_code, r.json().get("detail", ""), r.headers.get("retry-after", "")))
    return seen


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
    # The same account through its phone number, from the same address: even the right
    # password does not sign in while the account is locked.
    r = await client.post("/v1/auth/login", json={"identifier": "+919845099001", "password": PASSWORD})
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "access_token" not in r.json()


async def test_a_locked_account_does_not_reveal_which_identifiers_belong_to_it(
    client: AsyncClient, app: FastAPI
) -> None:
    """A guesser who locked an account through its email, then tries phone numbers, must not
    learn which number is the same account's: it is answered exactly as another account's."""
    account = await make_user(app, phone="+919845099002")
    await make_user(app, phone="+919845099003")  # someone else
    await _attempts(client, account.email, ["guess-guess-1"] * 6)  # locks the account
    guesses = ["guess-guess-2"] * 7
    linked = await _attempts(client, "+919845099002", guesses)
    unrelated = await _attempts(client, "+919845099003", guesses)
    assert [status for status, _, _ in linked] == [401] * 5 + [429] * 2  # the number's own lock
    assert linked == unrelated


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
