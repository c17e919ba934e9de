"""Sign-up takes an email or phone only once a code sent to it comes back (a review found any
unused address taken at once, so a squatter could keep its owner from ever registering).

Codes are read from the messages the shop sent (the console providers' boxes), as the owner of
the address reads them, after the workers have handled the sign-up's outbox event.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from kirana.api.accounts import signups
from kirana.api.db.base import utcnow
from tests.integration.access.helpers import (
    deliver_events,
    last_code_to,
    make_user,
    register,
    verify_signup,
)

VICTIM = "meera@example.com"


async def _login(client: AsyncClient, identifier: str, password: str) -> int:
    r = await client.post("/v1/auth/login", json={"identifier": identifier, "password": password})
    return r.status_code


async def test_a_sign_up_signs_in_only_once_its_code_came_back(client: AsyncClient, app: FastAPI) -> None:
    token = await register(app, client, {"email": "ravi@example.com", "password": "ravi-long-password-1"})
    assert await _login(client, "ravi@example.com", "ravi-long-password-1") == 401
    account = await verify_signup(client, token, last_code_to(app, "ravi@example.com"))
    assert account["email"] == "ravi@example.com"
    assert await _login(client, "ravi@example.com", "ravi-long-password-1") == 200
    # The code is spent with the sign-up.
    r = await client.post(
        "/v1/auth/register/verify", json={"signup": token, "code": last_code_to(app, "ravi@example.com")}
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


async def test_a_squatter_cannot_keep_the_owner_from_registering(client: AsyncClient, app: FastAPI) -> None:
    squatter = await register(app, client, {"email": VICTIM, "password": "squatter-password-1"})
    squatters_code = last_code_to(app, VICTIM)  # it went to the victim, not to the squatter
    assert await _login(client, VICTIM, "squatter-password-1") == 401
    owner = await register(app, client, {"email": VICTIM, "password": "owner-password-22"})
    owners_code = last_code_to(app, VICTIM)
    # The owner typing the squatter's code (it reached their inbox too) makes no account with
    # the squatter's password: a code confirms only its own sign-up.
    r = await client.post("/v1/auth/register/verify", json={"signup": owner, "code": squatters_code})
    assert r.status_code == 422 or squatters_code == owners_code
    await verify_signup(client, owner, owners_code)
    assert await _login(client, VICTIM, "owner-password-22") == 200
    assert await _login(client, VICTIM, "squatter-password-1") == 401
    # The squatter's claim was dropped with the address taken.
    r = await client.post("/v1/auth/register/verify", json={"signup": squatter, "code": squatters_code})
    assert r.status_code == 422


async def test_wrong_codes_drop_the_sign_up(client: AsyncClient, app: FastAPI) -> None:
    token = await register(app, client, {"phone": "+919845000777", "password": "guess-me-not-please"})
    right = last_code_to(app, "+919845000777")
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        r = await client.post("/v1/auth/register/verify", json={"signup": token, "code": wrong})
        assert r.status_code == 422
    r = await client.post("/v1/auth/register/verify", json={"signup": token, "code": right})
    assert r.status_code == 422
    assert await _login(client, "+919845000777", "guess-me-not-please") == 401


async def test_a_verified_address_gets_no_code_and_its_owner_is_told(
    client: AsyncClient, app: FastAPI
) -> None:
    await make_user(app, email="owner@example.com")
    sent_before = len(app.state.access.notifier.email.sent)
    r = await client.post(
        "/v1/auth/register", json={"email": "owner@example.com", "password": "x-long-password-7"}
    )
    assert r.status_code == 202
    await deliver_events(app)
    new = list(app.state.access.notifier.email.sent)[sent_before:]
    assert [m.to for m in new] == ["owner@example.com"]
    assert "already has one" in new[0].text and "code" not in new[0].text


async def test_expired_sign_ups_are_pruned_and_confirm_nothing(client: AsyncClient, app: FastAPI) -> None:
    token = await register(app, client, {"email": "late@example.com", "password": "late-long-password-3"})
    code = last_code_to(app, "late@example.com")
    assert await signups.prune(app.state.db) == 0  # nothing expired yet
    assert await signups.prune(app.state.db, now=utcnow() + signups.CODE_TTL + timedelta(seconds=1)) == 1
    r = await client.post("/v1/auth/register/verify", json={"signup": token, "code": code})
    assert r.status_code == 422


def _from(app: FastAPI, ip: str) -> AsyncClient:
    """A client whose requests come from `ip` (as the app sees the peer)."""
    return AsyncClient(transport=ASGITransport(app=app, client=(ip, 40_000)), base_url="http://shop.test")


async def test_a_strangers_sign_ups_cannot_lock_the_owner_out(client: AsyncClient, app: FastAPI) -> None:
    """The per-address limit counts sign-ups from one client address: a stranger who names the
    victim five times is refused the sixth, and the victim, signing up from elsewhere, is not."""

    def body(password: str) -> dict[str, str]:
        return {"email": "nila@example.com", "password": password}

    async with _from(app, "198.51.100.7") as stranger, _from(app, "203.0.113.20") as owner:
        for n in range(5):
            r = await stranger.post("/v1/auth/register", json=body(f"s-{n}-long-pass"))
            assert r.status_code == 202
        r = await stranger.post("/v1/auth/register", json=body("s-6-long-pass"))
        assert r.status_code == 429
        r = await owner.post("/v1/auth/register", json=body("owner-long-pass-1"))
        assert r.status_code == 202, r.text
        token = r.json()["signup"]
    await deliver_events(app)
    account = await verify_signup(client, token, last_code_to(app, "nila@example.com"))
    assert account["email"] == "nila@example.com"


async def test_codes_to_one_address_are_capped_whoever_asks(client: AsyncClient, app: FastAPI) -> None:
    """A flood of sign-ups naming one number from many client addresses sends it at most
    `SIGNUP_CODES` codes an hour (each SMS costs the shop money)."""
    number = "+919845000888"
    sms = app.state.access.notifier.sms.sent
    before = sum(1 for m in sms if m.to == number)
    for n in range(signups.SIGNUP_CODES.max + 3):
        async with _from(app, f"198.51.100.{n + 1}") as sender:
            body = {"phone": number, "password": f"flood-{n}-long-pass"}
            r = await sender.post("/v1/auth/register", json=body)
            assert r.status_code == 202, r.text
        await deliver_events(app)
    assert sum(1 for m in sms if m.to == number) - before == signups.SIGNUP_CODES.max
