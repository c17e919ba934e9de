"""A revoke on one API process takes effect on another (sharing Redis) within a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from kirana.api.app import create_app
from kirana.api.settings import Settings
from tests.integration.access.helpers import login, make_user, signed_in


@pytest.fixture
async def other_client(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A second, independent app instance: its own database pool, Redis client and cache."""
    other = create_app(settings, handle_signals=False)
    async with (
        other.router.lifespan_context(other),
        AsyncClient(transport=ASGITransport(app=other), base_url="http://replica-2") as c,
    ):
        yield c


async def test_revoke_on_one_process_is_seen_by_another_within_a_second(
    app: FastAPI, client: AsyncClient, other_client: AsyncClient
) -> None:
    owner = await signed_in(app, client, roles=("owner",), totp=True)
    staff = await login(client, await make_user(app, roles=("customer", "support")))
    # The other replica has the staff member's permissions cached.
    for _ in range(3):
        assert (await other_client.get("/v1/access/roles", headers=staff.headers)).status_code == 200
    r = await client.delete(f"/v1/access/users/{staff.user_id}/roles/support", headers=owner.headers)
    assert r.status_code == 200
    revoked_at = time.monotonic()
    while True:
        status = (await other_client.get("/v1/access/roles", headers=staff.headers)).status_code
        elapsed = time.monotonic() - revoked_at
        if status == 403:
            break
        assert elapsed < 1.0, f"revoke not visible on the other process after {elapsed:.3f} s"
        await asyncio.sleep(0.01)


async def test_sign_out_on_one_process_is_seen_by_another(
    app: FastAPI, client: AsyncClient, other_client: AsyncClient
) -> None:
    account = await login(client, await make_user(app))
    assert (await other_client.get("/v1/auth/me", headers=account.headers)).status_code == 200
    assert (await client.post("/v1/auth/logout", headers=account.headers)).status_code == 204
    revoked_at = time.monotonic()
    while (await other_client.get("/v1/auth/me", headers=account.headers)).status_code != 401:
        assert time.monotonic() - revoked_at < 1.0
        await asyncio.sleep(0.01)


async def test_cache_is_bypassed_while_the_invalidation_channel_is_down(
    app: FastAPI, client: AsyncClient
) -> None:
    rt = app.state.access
    staff = await login(client, await make_user(app, roles=("customer", "support")))
    assert (await client.get("/v1/access/roles", headers=staff.headers)).status_code == 200
    rt.cache.subscribed.clear()  # as after a lost subscription
    loads = rt.cache.loads
    assert (await client.get("/v1/access/roles", headers=staff.headers)).status_code == 200
    assert rt.cache.loads == loads + 1  # read from the database, not from a possibly stale entry
