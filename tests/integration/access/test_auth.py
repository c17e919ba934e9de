"""Sign-up, sign-in, refresh-token rotation and reuse, sign-out, password reset, brute force."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from kirana.api.ratelimit import limiter
from tests.integration.access.helpers import (
    PASSWORD,
    deliver_events,
    last_code_to,
    login,
    make_user,
    register,
    verify_signup,
)


async def test_register_verify_then_login_and_read_me(client: AsyncClient, app: FastAPI) -> None:
    token = await register(
        app,
        client,
        {"email": "Asha@Example.com", "phone": "98450 12345", "password": "a-long-password-1"},
    )
    await verify_signup(client, token, last_code_to(app, "+919845012345"))
    r = await client.post(
        "/v1/auth/login", json={"identifier": "+91 98450 12345", "password": "a-long-password-1"}
    )
    assert r.status_code == 200, r.text
    access = r.json()["access_token"]
    me = (await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {access}"})).json()
    assert me["phone"] == "+919845012345" and me["email"] is None  # the email is not proved yet
    assert me["roles"] == ["customer"]
    assert "cart:*" in me["permissions"]
    await verify_signup(client, token, last_code_to(app, "asha@example.com"))
    me = (await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {access}"})).json()
    assert me["email"] == "asha@example.com"


async def test_registering_a_taken_email_looks_the_same(client: AsyncClient, app: FastAPI) -> None:
    await make_user(app, email="taken@example.com")
    r = await client.post(
        "/v1/auth/register", json={"email": "taken@example.com", "password": "another-password-9"}
    )
    fresh = await client.post(
        "/v1/auth/register", json={"email": "new@example.com", "password": "another-password-9"}
    )
    assert r.status_code == fresh.status_code == 202
    assert set(r.json()) == set(fresh.json()) and r.json()["detail"] == fresh.json()["detail"]
    assert r.json()["signup"] != fresh.json()["signup"]  # a token either way
    await deliver_events(app)
    # the real owner hears about it, and gets no code
    told = [m for m in app.state.access.notifier.email.sent if m.to == "taken@example.com"]
    assert len(told) == 1 and "already has one" in told[0].text


async def test_weak_password_is_refused(client: AsyncClient) -> None:
    r = await client.post("/v1/auth/register", json={"email": "w@example.com", "password": "short"})
    assert r.status_code == 422


async def test_unknown_account_and_wrong_password_answer_alike(client: AsyncClient, app: FastAPI) -> None:
    account = await make_user(app)
    wrong = await client.post(
        "/v1/auth/login", json={"identifier": account.email, "password": "not-the-password"}
    )
    unknown = await client.post(
        "/v1/auth/login", json={"identifier": "nobody@example.com", "password": "whatever-pw"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_access_token_is_eddsa_with_a_published_kid(client: AsyncClient, app: FastAPI) -> None:
    account = await login(client, await make_user(app))
    header = jwt.get_unverified_header(account.access_token)
    assert header["alg"] == "EdDSA"
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert header["kid"] in {k["kid"] for k in keys}


async def test_token_signed_by_a_rotated_out_key_still_verifies_until_expiry(
    client: AsyncClient, app: FastAPI
) -> None:
    account = await login(client, await make_user(app))
    old_kid = jwt.get_unverified_header(account.access_token)["kid"]
    await app.state.access.keys.load(force_rotate=True)
    newer = await login(client, await make_user(app))
    assert jwt.get_unverified_header(newer.access_token)["kid"] != old_kid
    assert (await client.get("/v1/auth/me", headers=account.headers)).status_code == 200
    assert (await client.get("/v1/auth/me", headers=newer.headers)).status_code == 200


async def test_a_verified_token_is_remembered_only_while_it_and_its_key_are_valid(
    client: AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await login(client, await make_user(app))
    keys = app.state.access.keys
    assert (await client.get("/v1/auth/me", headers=account.headers)).status_code == 200
    assert account.access_token in keys._verified
    calls = 0
    real_decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    assert (await client.get("/v1/auth/me", headers=account.headers)).status_code == 200
    assert calls == 0  # answered from the verified-token cache
    # The signing key stops being trusted: the remembered token is refused at once.
    kid = jwt.get_unverified_header(account.access_token)["kid"]
    trusted = keys._keys[kid]
    keys._keys[kid] = dataclasses.replace(trusted, verify_until=trusted.verify_until.replace(year=2000))
    monkeypatch.setattr(keys, "load", _no_reload)
    assert (await client.get("/v1/auth/me", headers=account.headers)).status_code == 401
    keys._keys[kid] = trusted
    assert (await client.get("/v1/auth/me", headers=account.headers)).status_code == 200
    assert calls == 1  # the refused token was forgotten, so it was verified afresh
    # Its remembered expiry passes: it is not trusted from memory but verified again.
    kid_, claims = keys._verified[account.access_token]
    keys._verified[account.access_token] = (kid_, dataclasses.replace(claims, expires_at=time.time() - 1))
    r = await client.get("/v1/auth/me", headers=account.headers)
    assert r.status_code == 200 and calls == 2  # (the real token is still valid)
    keys.verified_max = 1  # bounded: a second token evicts the first
    other = await login(client, await make_user(app))
    assert (await client.get("/v1/auth/me", headers=other.headers)).status_code == 200
    assert list(keys._verified) == [other.access_token]


async def _no_reload(**_: Any) -> None:
    return None


async def test_forged_or_garbage_tokens_are_rejected(client: AsyncClient) -> None:
    forged = jwt.encode(
        {"sub": "x", "exp": time.time() + 60}, "k" * 32, algorithm="HS256", headers={"kid": "x"}
    )
    for token in (forged, "garbage", ""):
        r = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401


async def test_refresh_rotates_and_reuse_revokes_the_family(client: AsyncClient, app: FastAPI) -> None:
    account = await login(client, await make_user(app))
    first = account.refresh_token
    r = await client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 200
    second = r.json()["refresh_token"]
    assert second != first
    new_access = r.json()["access_token"]
    # An attacker replays the first (already spent) refresh token...
    r = await client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 401
    assert "already used" in r.json()["detail"]
    # ...and the whole session is gone: the legitimate newer refresh token and access tokens too.
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": second})).status_code == 401
    r = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {new_access}"})
    assert r.status_code == 401


async def test_logout_ends_the_session_and_revoke_all_ends_every_one(
    client: AsyncClient, app: FastAPI
) -> None:
    user = await make_user(app)
    a = await login(client, user)
    b_tokens = (
        await client.post("/v1/auth/login", json={"identifier": user.email, "password": PASSWORD})
    ).json()
    b = {"Authorization": f"Bearer {b_tokens['access_token']}"}
    sessions = (await client.get("/v1/auth/sessions", headers=a.headers)).json()
    assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1
    assert (await client.post("/v1/auth/logout", headers=a.headers)).status_code == 204
    assert (await client.get("/v1/auth/me", headers=a.headers)).status_code == 401
    assert (await client.get("/v1/auth/me", headers=b)).status_code == 200
    r = await client.post("/v1/auth/sessions/revoke-all", headers=b, json={})
    assert r.json() == {"revoked": 1}
    assert (await client.get("/v1/auth/me", headers=b)).status_code == 401
    assert (
        await client.post("/v1/auth/refresh", json={"refresh_token": b_tokens["refresh_token"]})
    ).status_code == 401


async def test_brute_force_is_locked_out_with_retry_after(client: AsyncClient, app: FastAPI) -> None:
    account = await make_user(app)
    statuses = []
    for _ in range(6):
        r = await client.post(
            "/v1/auth/login", json={"identifier": account.email, "password": "guess-guess-guess"}
        )
        statuses.append(r.status_code)
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    # Locked: even the right password is refused until the lock lapses.
    r = await client.post("/v1/auth/login", json={"identifier": account.email, "password": PASSWORD})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert r.headers["content-type"] == "application/problem+json"
    # The failures are in the audit log.
    async with app.state.db.session() as session:
        from sqlalchemy import func, select

        from kirana.api.audit.models import AuditEvent

        failed = await session.scalar(
            select(func.count()).where(AuditEvent.action == "auth.login", AuditEvent.outcome == "failed")
        )
    assert failed == 5


async def test_failures_from_one_address_do_not_lock_the_owner_out_elsewhere(
    client: AsyncClient, app: FastAPI
) -> None:
    account = await make_user(app)
    for _ in range(6):  # the client's address is now locked out for this account
        r = await client.post(
            "/v1/auth/login", json={"identifier": account.email, "password": "guess-guess-guess"}
        )
    assert r.status_code == 429
    async with AsyncClient(
        transport=ASGITransport(app=app, client=("203.0.113.7", 40000)), base_url="http://t"
    ) as elsewhere:
        r = await elsewhere.post("/v1/auth/login", json={"identifier": account.email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert "access_token" in r.json()
        # A wrong password from there is still just a wrong password, not a lock.
        r = await elsewhere.post(
            "/v1/auth/login", json={"identifier": account.email, "password": "nope-nope-nope"}
        )
        assert r.status_code == 401
    # The guessing address stays locked, right password or not.
    r = await client.post("/v1/auth/login", json={"identifier": account.email, "password": PASSWORD})
    assert r.status_code == 429


async def test_guessing_spread_over_many_addresses_hits_the_per_account_cap(app: FastAPI) -> None:
    from kirana.api.accounts import flows

    account = await make_user(app)
    cap = flows.LOGIN_IDENTIFIER_LOCK.free
    for _ in range(cap - 1):  # failures from many other addresses
        await limiter.record_failure(app.state.redis, flows.LOGIN_IDENTIFIER_LOCK, account.email)
    async with AsyncClient(
        transport=ASGITransport(app=app, client=("198.51.100.9", 40000)), base_url="http://t"
    ) as fresh:
        r = await fresh.post(
            "/v1/auth/login", json={"identifier": account.email, "password": "guess-guess-guess"}
        )
        assert r.status_code == 401  # the cap's last free failure starts the lock
        r = await fresh.post("/v1/auth/login", json={"identifier": account.email, "password": PASSWORD})
        assert r.status_code == 429


async def test_lockout_grows_with_each_further_failure(app: FastAPI) -> None:
    redis = app.state.redis
    lock = limiter.Lockout("t", free=2, base_s=10, cap_s=35)
    durations = [await limiter.record_failure(redis, lock, "someone") for _ in range(5)]
    assert durations == [0, 10_000, 20_000, 35_000, 35_000]
    await limiter.record_success(redis, lock, "someone")
    await limiter.ensure_unlocked(redis, lock, "someone")


async def test_password_reset_is_single_use_and_signs_out_everywhere(
    client: AsyncClient, app: FastAPI
) -> None:
    account = await login(client, await make_user(app))
    r = await client.post("/v1/auth/password/reset-request", json={"identifier": account.email})
    unknown = await client.post("/v1/auth/password/reset-request", json={"identifier": "ghost@example.com"})
    assert r.status_code == unknown.status_code == 202 and r.json() == unknown.json()
    await deliver_events(app)  # the workers look the account up and send the code
    message = app.state.access.notifier.email.sent[-1]
    assert message.to == account.email
    token = message.text.split("code: ")[1].split(" ")[0]
    r = await client.post(
        "/v1/auth/password/reset", json={"token": token, "new_password": "brand-new-password-7"}
    )
    assert r.status_code == 204
    again = await client.post(
        "/v1/auth/password/reset", json={"token": token, "new_password": "brand-new-password-8"}
    )
    assert again.status_code == 401
    assert (await client.get("/v1/auth/me", headers=account.headers)).status_code == 401
    r = await client.post(
        "/v1/auth/login", json={"identifier": account.email, "password": "brand-new-password-7"}
    )
    assert r.status_code == 200


async def test_password_change_needs_the_current_one(client: AsyncClient, app: FastAPI) -> None:
    account = await login(client, await make_user(app))
    r = await client.post(
        "/v1/auth/password",
        headers=account.headers,
        json={"current_password": "nope-nope-nope", "new_password": "x" * 12},
    )
    assert r.status_code == 401
    r = await client.post(
        "/v1/auth/password",
        headers=account.headers,
        json={"current_password": PASSWORD, "new_password": "another-good-password"},
    )
    assert r.status_code == 204
    assert (await client.get("/v1/auth/me", headers=account.headers)).status_code == 200  # this session stays


async def test_concurrent_refreshes_of_one_token_leave_at_most_one_winner(
    client: AsyncClient, app: FastAPI
) -> None:
    account = await login(client, await make_user(app))
    results = await asyncio.gather(
        *(client.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token}) for _ in range(3))
    )
    assert sorted(r.status_code for r in results).count(200) <= 1
