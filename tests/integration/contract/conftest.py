"""A real `kirana serve` process on real PostgreSQL and Redis (with a small generated catalog and
the fake Razorpay), and bearer tokens of a customer and of a staff member, signed in through the
API. The contract tests (schemathesis, the generated client) talk to it over HTTP only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from kirana.api.access.models import UserRole, UserScope
from kirana.api.accounts import passwords
from kirana.api.accounts.models import User
from kirana.api.catalog import generate
from kirana.api.db.base import utcnow
from kirana.api.db.urls import sync_url
from kirana.api.devrazorpay.server import FakeServer
from tests.integration.servers import start_server

PASSWORD = "correct-horse-battery"
STAFF_STORE = "blr-1"


@dataclass
class Shop:
    base: str
    database_url: str
    customer_token: str
    staff_token: str


def _make_user(database_url: str, *, roles: tuple[str, ...], scopes: tuple[str, ...] = ()) -> str:
    engine = create_engine(sync_url(database_url))
    email = f"contract-{uuid.uuid4().hex[:10]}@example.com"
    with Session(engine) as session, session.begin():
        user = User(
            email=email,
            password_hash=passwords.hash_password(PASSWORD),
            name="Contract",
            password_changed_at=utcnow(),
        )
        session.add(user)
        session.flush()
        for role in roles:
            session.add(UserRole(user_id=user.id, role=role, granted_at=utcnow()))
        for scope in scopes:
            session.add(UserScope(user_id=user.id, scope=scope))
    engine.dispose()
    return email


def _login(client: httpx.Client, email: str) -> str:
    r = client.post("/v1/auth/login", json={"identifier": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _staff_with_two_factor(client: httpx.Client, email: str) -> str:
    """A store manager (refunds: privileged) with an authenticator app enrolled and a fresh
    step-up, as staff must have (the password step-up before enrolling stays fresh for
    `KIRANA_STEP_UP_TTL_S`)."""
    token = _login(client, email)
    auth = {"Authorization": f"Bearer {token}"}
    r = client.post("/v1/auth/step-up", headers=auth, json={"method": "password", "password": PASSWORD})
    assert r.status_code == 200, r.text
    r = client.post("/v1/auth/2fa/totp", headers=auth)
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = client.post("/v1/auth/2fa/totp/confirm", headers=auth, json={"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 200, r.text
    return token


@pytest.fixture
def shop(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Shop]:
    engine = create_engine(sync_url(database_url))
    with engine.begin() as conn:
        generate.generate(conn, 40, seed=11)
    engine.dispose()
    fake = FakeServer(
        key_id="rzp_test_contract", key_secret="contract-secret", webhook_secret="whsec-c"
    ).start()
    env = {
        "KIRANA_DATABASE_URL": database_url,
        "KIRANA_REDIS_URL": redis_url,
        "KIRANA_DATA_DIR": str(tmp_path),
        "KIRANA_ENVIRONMENT": "test",
        "KIRANA_LOG_LEVEL": "WARNING",
        "KIRANA_DRAIN_SECONDS": "0",
        "KIRANA_STEP_UP_TTL_S": "3600",
        "KIRANA_API_DOCS": "schema",
        "KIRANA_RAZORPAY_KEY_ID": fake.account.key_id,
        "KIRANA_RAZORPAY_KEY_SECRET": fake.account.key_secret,
        "KIRANA_RAZORPAY_WEBHOOK_SECRET": "whsec-c",
        "KIRANA_RAZORPAY_BASE_URL": fake.base_url,
        "KIRANA_RAZORPAY_TIMEOUT_S": "2",
    }
    proc, base = start_server(env, app_factory="kirana.api.asgi:factory", ready_within_s=180)
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            client.get("/openapi.json", timeout=300).raise_for_status()  # built once, on first use
            customer = _login(client, _make_user(database_url, roles=("customer",)))
            staff_email = _make_user(
                database_url, roles=("customer", "store_manager"), scopes=(f"store:{STAFF_STORE}",)
            )
            staff = _staff_with_two_factor(client, staff_email)
        yield Shop(base=base, database_url=database_url, customer_token=customer, staff_token=staff)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        fake.stop()
