"""TOTP enrolment and verification (replay protection), recovery codes, step-up, SMS codes."""

from __future__ import annotations

import base64
import uuid

import pyotp
from fastapi import FastAPI
from httpx import AsyncClient

from tests.integration.access.helpers import (
    PASSWORD,
    Account,
    enrol_totp,
    login,
    make_user,
    signed_in,
    step_up_with_password,
    totp_code,
)


async def _challenge(client: AsyncClient, email: str) -> str:
    r = await client.post("/v1/auth/login", json={"identifier": email, "password": PASSWORD})
    body = r.json()
    assert body["two_factor_required"] is True, body
    return str(body["challenge"])


async def test_enrolment_gives_an_otpauth_uri_and_a_png_qr_code(client: AsyncClient, app: FastAPI) -> None:
    account = await signed_in(app, client)
    await step_up_with_password(client, account)
    r = await client.post("/v1/auth/2fa/totp", headers=account.headers)
    body = r.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/Kirana:")
    assert pyotp.parse_uri(body["otpauth_uri"]).secret == body["secret"]
    png = base64.b64decode(body["qr_png"].split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # Not on until confirmed: sign-in still needs no code.
    r = await client.post("/v1/auth/login", json={"identifier": account.email, "password": PASSWORD})
    assert "access_token" in r.json()
    bad = await client.post("/v1/auth/2fa/totp/confirm", headers=account.headers, json={"code": "000000"})
    assert bad.status_code == 422


async def test_secret_is_encrypted_at_rest(client: AsyncClient, app: FastAPI) -> None:
    account = await enrol_totp(client, await signed_in(app, client))
    async with app.state.db.session() as session:
        from kirana.api.twofactor.models import TotpCredential

        cred = await session.get(TotpCredential, account.user_id)
    assert cred is not None and account.totp_secret
    assert account.totp_secret.encode() not in cred.secret


async def test_login_needs_the_code_and_a_replayed_code_is_rejected(
    client: AsyncClient, app: FastAPI
) -> None:
    account = await enrol_totp(client, await signed_in(app, client))
    assert account.totp_secret
    code = totp_code(account.totp_secret, offset_steps=1)
    challenge = await _challenge(client, account.email)
    r = await client.post("/v1/auth/login/2fa", json={"challenge": challenge, "method": "totp", "code": code})
    assert r.status_code == 200, r.text
    # The same code again, even within its validity window, in a brand-new sign-in: refused.
    challenge = await _challenge(client, account.email)
    r = await client.post("/v1/auth/login/2fa", json={"challenge": challenge, "method": "totp", "code": code})
    assert r.status_code == 401
    # An older step than the one already used is refused too.
    older = totp_code(account.totp_secret, offset_steps=0)
    r = await client.post(
        "/v1/auth/login/2fa", json={"challenge": challenge, "method": "totp", "code": older}
    )
    assert r.status_code == 401


async def test_recovery_codes_work_once_each(client: AsyncClient, app: FastAPI) -> None:
    account = await enrol_totp(client, await signed_in(app, client))
    assert len(account.recovery_codes) == 10 and len(set(account.recovery_codes)) == 10
    code = account.recovery_codes[0]
    challenge = await _challenge(client, account.email)
    r = await client.post(
        "/v1/auth/login/2fa", json={"challenge": challenge, "method": "recovery", "code": code}
    )
    assert r.status_code == 200
    challenge = await _challenge(client, account.email)
    r = await client.post(
        "/v1/auth/login/2fa", json={"challenge": challenge, "method": "recovery", "code": code}
    )
    assert r.status_code == 401
    status = (await client.get("/v1/auth/2fa", headers=account.headers)).json()
    assert status == {"totp": True, "sms": False, "recovery_codes_left": 9}


async def test_a_completed_challenge_cannot_mint_a_second_session(client: AsyncClient, app: FastAPI) -> None:
    account = await enrol_totp(client, await signed_in(app, client))
    assert account.totp_secret
    challenge = await _challenge(client, account.email)
    ok = await client.post(
        "/v1/auth/login/2fa",
        json={"challenge": challenge, "method": "recovery", "code": account.recovery_codes[0]},
    )
    assert ok.status_code == 200
    again = await client.post(
        "/v1/auth/login/2fa",
        json={"challenge": challenge, "method": "recovery", "code": account.recovery_codes[1]},
    )
    assert again.status_code == 401


async def test_guessing_codes_locks_the_second_step(client: AsyncClient, app: FastAPI) -> None:
    account = await enrol_totp(client, await signed_in(app, client))
    assert account.totp_secret
    challenge = await _challenge(client, account.email)
    codes = [
        (
            await client.post(
                "/v1/auth/login/2fa", json={"challenge": challenge, "method": "totp", "code": f"{i:06d}"}
            )
        )
        for i in range(6)
    ]
    assert [r.status_code for r in codes] == [401] * 5 + [429]
    right = totp_code(account.totp_secret, offset_steps=1)
    r = await client.post(
        "/v1/auth/login/2fa", json={"challenge": challenge, "method": "totp", "code": right}
    )
    assert r.status_code == 429 and "Retry-After" in r.headers


async def test_disabling_2fa_needs_step_up_and_password(client: AsyncClient, app: FastAPI) -> None:
    account = await enrol_totp(client, await signed_in(app, client))
    assert account.totp_secret
    # Let the step-up from enrolment age past the window: disabling is refused.
    from datetime import timedelta

    from sqlalchemy import update

    from kirana.api.accounts.models import AuthSession
    from kirana.api.db.base import utcnow

    async with app.state.db.session() as session:
        await session.execute(update(AuthSession).values(two_factor_at=utcnow() - timedelta(hours=1)))
    await app.state.access.invalidate(account.user_id)
    r = await client.post("/v1/auth/2fa/disable", headers=account.headers, json={"password": PASSWORD})
    assert r.status_code == 401 and r.json()["reason"] == "step-up-required"
    # A fresh sign-in with a TOTP code is a fresh strong authentication.
    account = await login(client, account)
    r = await client.post(
        "/v1/auth/2fa/disable", headers=account.headers, json={"password": "wrong-password-x"}
    )
    assert r.status_code == 401
    r = await client.post("/v1/auth/2fa/disable", headers=account.headers, json={"password": PASSWORD})
    assert r.status_code == 204
    assert (await client.get("/v1/auth/2fa", headers=account.headers)).json()["totp"] is False


async def test_sensitive_action_without_recent_step_up_answers_401_insufficient(
    client: AsyncClient, app: FastAPI
) -> None:
    account = await signed_in(app, client)  # password sign-in, no 2FA: no strong auth yet
    r = await client.patch("/v1/auth/me", headers=account.headers, json={"name": "x"})
    assert r.status_code == 401
    assert r.json()["reason"] == "step-up-required"
    assert "insufficient_user_authentication" in r.headers["WWW-Authenticate"]
    r = await client.post(
        "/v1/auth/step-up", headers=account.headers, json={"method": "password", "password": PASSWORD}
    )
    assert r.status_code == 200
    r = await client.patch("/v1/auth/me", headers=account.headers, json={"email": "changed@example.com"})
    assert r.status_code == 202 and r.json()["pending"] == ["email"]


async def test_accounts_with_2fa_cannot_step_up_with_the_password(client: AsyncClient, app: FastAPI) -> None:
    account = await enrol_totp(client, await signed_in(app, client))
    r = await client.post(
        "/v1/auth/step-up", headers=account.headers, json={"method": "password", "password": PASSWORD}
    )
    assert r.status_code == 422


async def test_sms_two_factor_codes(client: AsyncClient, app: FastAPI) -> None:
    sms = app.state.access.notifier.sms
    account = await login(client, await make_user(app, phone="+919811122233"))
    await step_up_with_password(client, account)
    assert (await client.post("/v1/auth/2fa/sms", headers=account.headers)).json()["to"].endswith("2233")
    code = sms.sent[-1].text[:6]
    # Resends are throttled.
    again = await client.post("/v1/auth/2fa/sms", headers=account.headers)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > 0
    assert (
        await client.post("/v1/auth/2fa/sms/confirm", headers=account.headers, json={"code": code})
    ).status_code == 204
    # Sign-in now asks for a code; the code is sent on request and works once.
    challenge = await _challenge(client, account.email)
    await app.state.redis.delete(*[k async for k in app.state.redis.scan_iter("kirana:sms2fa:resend:*")])
    assert (await client.post("/v1/auth/login/2fa/sms", json={"challenge": challenge})).status_code == 200
    code = sms.sent[-1].text[:6]
    wrong = "000000" if code != "000000" else "111111"
    r = await client.post("/v1/auth/login/2fa", json={"challenge": challenge, "method": "sms", "code": wrong})
    assert r.status_code == 401
    r = await client.post("/v1/auth/login/2fa", json={"challenge": challenge, "method": "sms", "code": code})
    assert r.status_code == 200


async def test_sms_code_stops_after_five_attempts_and_a_new_code_replaces_the_old(
    client: AsyncClient, app: FastAPI
) -> None:
    from kirana.api.twofactor import service as twofactor

    rt = app.state.access
    account = await make_user(app, phone="+919822233344")
    kw = {"user_id": account.user_id, "purpose": "login"}
    await twofactor.send_sms_code(
        rt.redis, rt.box, rt.notifier.sms, phone="+919822233344", daily_cap=10, ip=None, **kw
    )
    first = rt.notifier.sms.sent[-1].text[:6]
    await rt.redis.delete(*[k async for k in rt.redis.scan_iter("kirana:sms2fa:resend:*")])
    await twofactor.send_sms_code(
        rt.redis, rt.box, rt.notifier.sms, phone="+919822233344", daily_cap=10, ip=None, **kw
    )
    second = rt.notifier.sms.sent[-1].text[:6]
    if first != second:
        assert not await twofactor.verify_sms_code(rt.redis, rt.box, code=first, **kw)
    for _ in range(5):
        await twofactor.verify_sms_code(rt.redis, rt.box, code="not-it", **kw)
    assert not await twofactor.verify_sms_code(rt.redis, rt.box, code=second, **kw)


async def test_enrolling_a_second_factor_needs_a_step_up_and_is_not_one(
    client: AsyncClient, app: FastAPI
) -> None:
    """A stolen access token alone cannot enrol the thief's app (or phone) and then pass
    step-up checks: enrolling needs a step-up first and does not count as one."""
    sms = app.state.access.notifier.sms
    account = await login(client, await make_user(app, phone="+919811144455"))
    r = await client.post("/v1/auth/2fa/totp", headers=account.headers)
    assert r.status_code == 401 and r.json()["reason"] == "step-up-required"
    r = await client.post("/v1/auth/2fa/sms", headers=account.headers)
    assert r.status_code == 401 and r.json()["reason"] == "step-up-required"
    r = await client.post("/v1/auth/2fa/sms/confirm", headers=account.headers, json={"code": "123456"})
    assert r.status_code == 401 and r.json()["reason"] == "step-up-required"
    assert not sms.sent
    # Stepped up, the thief starts enrolling; their step-up then lapses before they confirm.
    await step_up_with_password(client, account)
    r = await client.post("/v1/auth/2fa/totp", headers=account.headers)
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    await _age_step_up(app, account)
    r = await client.post(
        "/v1/auth/2fa/totp/confirm", headers=account.headers, json={"code": totp_code(secret)}
    )
    assert r.status_code == 200, r.text
    # Confirming their own app's code is not a step-up: the email change stays refused.
    r = await client.patch("/v1/auth/me", headers=account.headers, json={"email": "thief@example.com"})
    assert r.status_code == 401 and r.json()["reason"] == "step-up-required"


async def _age_step_up(app: FastAPI, account: Account) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from kirana.api.access import service as access
    from kirana.api.accounts.models import AuthSession
    from kirana.api.db.base import utcnow

    async with app.state.db.session() as session:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.id == uuid.UUID(account.session_id))
            .values(two_factor_at=utcnow() - timedelta(days=1))
        )
        version = await access.bump_version(session, account.user_id)
    await app.state.access.invalidate(account.user_id, version)
