"""A password-reset request does the same work on the request path for a known and an
unknown account: the lookup, token, audit entry and delivery happen later, in the worker."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from kirana.api.accounts.models import PasswordResetToken
from kirana.api.audit.models import AuditEvent
from kirana.api.outbox.models import OutboxEvent
from tests.integration.access.helpers import deliver_events, make_user


async def _counts(app: FastAPI) -> tuple[int, int, int]:
    async with app.state.db.session() as s:
        tokens = await s.scalar(select(func.count()).select_from(PasswordResetToken))
        audits = await s.scalar(
            select(func.count()).where(AuditEvent.action == "account.password_reset_requested")
        )
        events = await s.scalar(
            select(func.count()).where(OutboxEvent.topic == "account.password_reset_requested")
        )
    return int(tokens or 0), int(audits or 0), int(events or 0)


async def test_known_and_unknown_accounts_cost_the_request_path_the_same(
    client: AsyncClient, app: FastAPI
) -> None:
    account = await make_user(app)
    sent = app.state.access.notifier.email.sent
    before = len(sent)
    r = await client.post("/v1/auth/password/reset-request", json={"identifier": account.email})
    assert r.status_code == 202
    # Known account: no token, no audit entry, no message yet; one queued event, the same an
    # unknown address queues.
    assert await _counts(app) == (0, 0, 1)
    assert len(sent) == before
    r = await client.post("/v1/auth/password/reset-request", json={"identifier": "ghost@example.com"})
    assert r.status_code == 202
    assert await _counts(app) == (0, 0, 2)
    async with app.state.db.session() as s:
        payloads = (await s.scalars(select(OutboxEvent.payload).order_by(OutboxEvent.id))).all()
    assert [sorted(p) for p in payloads[-2:]][0] == [sorted(p) for p in payloads[-2:]][1]
    assert all("token" not in str(p) for p in payloads)

    # The worker then sends the code to the account that exists, and to nobody else.
    assert await deliver_events(app) == 2
    assert await _counts(app) == (1, 1, 2)
    assert [m.to for m in list(sent)[before:]] == [account.email]
    token = sent[-1].text.split("code: ")[1].split(" ")[0]
    r = await client.post(
        "/v1/auth/password/reset", json={"token": token, "new_password": "brand-new-password-7"}
    )
    assert r.status_code == 204
    assert await deliver_events(app) == 0  # each event is handled once
