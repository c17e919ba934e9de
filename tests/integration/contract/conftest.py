"""A real `kirana serve` process on real PostgreSQL and Redis (with a small generated catalog and
the fake Razorpay), and bearer tokens of a customer and of a staff member, signed in through the
API. The contract tests (schemathesis, the generated client) talk to it over HTTP only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from kirana.api.catalog import generate
from kirana.api.db.urls import sync_url
from kirana.api.devrazorpay.server import FakeServer
from tests.integration.contract import fuzzing
from tests.integration.servers import start_server


@dataclass
class Shop:
    base: str
    database_url: str
    customer_token: str
    staff_token: str


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
            customer = fuzzing.sign_in(client, fuzzing.make_user(database_url, roles=("customer",)))
            # A store manager (refunds: privileged) with an authenticator app enrolled and a
            # fresh step-up, as staff must have.
            staff_email = fuzzing.make_user(
                database_url, roles=("customer", "store_manager"), scopes=(f"store:{fuzzing.STAFF_STORE}",)
            )
            staff = fuzzing.Caller("staff", staff_email)
            staff.token = fuzzing.sign_in(client, staff_email)
            fuzzing.enrol_totp(client, staff)
        yield Shop(base=base, database_url=database_url, customer_token=customer, staff_token=staff.token)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        fake.stop()
