"""Factories for the access tests: accounts with roles, signed-in clients, enrolled TOTP."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import pyotp
from fastapi import FastAPI
from httpx import AsyncClient

from kirana.api.access.models import UserRole
from kirana.api.accounts import passwords
from kirana.api.accounts.models import User
from kirana.api.db.base import utcnow

PASSWORD = "correct-horse-battery"
_HASH = passwords.hash_password(PASSWORD)


@dataclass
class Account:
    user_id: uuid.UUID
    email: str
    access_token: str = ""
    refresh_token: str = ""
    session_id: str = ""
    totp_secret: str | None = None
    recovery_codes: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def make_user(
    app: FastAPI,
    *,
    roles: tuple[str, ...] = ("customer",),
    email: str | None = None,
    phone: str | None = None,
) -> Account:
    email = email or f"u{uuid.uuid4().hex[:10]}@example.com"
    async with app.state.db.session() as session:
        user = User(email=email, phone=phone, password_hash=_HASH, name="Test", password_changed_at=utcnow())
        session.add(user)
        await session.flush()
        for role in roles:
            session.add(UserRole(user_id=user.id, role=role, granted_at=utcnow()))
    return Account(user_id=user.id, email=email)


async def login(client: AsyncClient, account: Account, password: str = PASSWORD) -> Account:
    r = await client.post("/v1/auth/login", json={"identifier": account.email, "password": password})
    assert r.status_code == 200, r.text
    body = r.json()
    if body.get("two_factor_required"):
        assert account.totp_secret
        code = totp_code(account.totp_secret, offset_steps=1)
        r = await client.post(
            "/v1/auth/login/2fa", json={"challenge": body["challenge"], "method": "totp", "code": code}
        )
        assert r.status_code == 200, r.text
        body = r.json()
    account.access_token = body["access_token"]
    account.refresh_token = body["refresh_token"]
    account.session_id = body["session_id"]
    return account


def totp_code(secret: str, *, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


async def step_up_with_password(client: AsyncClient, account: Account) -> None:
    """A password step-up (accounts without 2FA): sensitive routes then pass for a while."""
    r = await client.post(
        "/v1/auth/step-up", headers=account.headers, json={"method": "password", "password": PASSWORD}
    )
    assert r.status_code == 200, r.text


async def enrol_totp(client: AsyncClient, account: Account) -> Account:
    """Enrol and confirm an authenticator app. Enrolling needs a step-up first (the password,
    as the account has no 2FA yet); that step-up stays fresh for the caller's next actions."""
    await step_up_with_password(client, account)
    r = await client.post("/v1/auth/2fa/totp", headers=account.headers)
    assert r.status_code == 200, r.text
    account.totp_secret = r.json()["secret"]
    r = await client.post(
        "/v1/auth/2fa/totp/confirm", headers=account.headers, json={"code": totp_code(account.totp_secret)}
    )
    assert r.status_code == 200, r.text
    account.recovery_codes = r.json()["recovery_codes"]
    return account


async def signed_in(
    app: FastAPI, client: AsyncClient, *, roles: tuple[str, ...] = ("customer",), totp: bool = False
) -> Account:
    account = await login(client, await make_user(app, roles=roles))
    if totp:
        await enrol_totp(client, account)
    return account


async def deliver_events(app: FastAPI) -> int:
    """What the workers do with committed outbox events: relay them, then run the consumers
    (with the app's notifier, so tests read what was sent). Returns the events handled."""
    from kirana.workers import consumers, relay

    await relay.relay_once(app.state.db, app.state.redis)
    deps = consumers.Deps(
        db=app.state.db,
        redis=app.state.redis,
        notifier=app.state.access.notifier,
        settings=app.state.settings,
    )
    return await consumers.consume_once(deps, consumer="test")


def code_in(text: str) -> str:
    """The six-digit code of a message the shop sent ("...code: 492039 (valid ...")."""
    return text.split(": ", 1)[1][:6]


async def register(app: FastAPI, client: AsyncClient, body: dict[str, str]) -> str:
    """Sign up as a client does, and let the workers send the codes; the sign-up's token."""
    r = await client.post("/v1/auth/register", json=body)
    assert r.status_code == 202, r.text
    await deliver_events(app)
    token: str = r.json()["signup"]
    return token


def last_code_to(app: FastAPI, address: str) -> str:
    """The code of the latest message sent to this email or number, read as its owner would."""
    notifier = app.state.access.notifier
    box = notifier.email.sent if "@" in address else notifier.sms.sent
    return code_in(next(m.text for m in reversed(box) if m.to == address))


async def verify_signup(client: AsyncClient, token: str, code: str) -> dict[str, str]:
    r = await client.post("/v1/auth/register/verify", json={"signup": token, "code": code})
    assert r.status_code == 200, r.text
    body: dict[str, str] = r.json()
    return body
