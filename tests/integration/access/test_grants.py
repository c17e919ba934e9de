"""Granting and revoking: time-bound grants, deny beats allow, no escalation, the last owner,
staff scopes, role hierarchy cycles."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from httpx import AsyncClient

from tests.integration.access.helpers import Account, login, make_user, signed_in


async def _me(client: AsyncClient, account: Account) -> dict[str, object]:
    r = await client.get("/v1/auth/me", headers=account.headers)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


async def test_time_bound_grant_expires_by_itself(client: AsyncClient, app: FastAPI) -> None:
    owner = await signed_in(app, client, roles=("owner",), totp=True)
    staff = await signed_in(app, client)
    expires = datetime.now(UTC) + timedelta(seconds=2)
    r = await client.post(
        f"/v1/access/users/{staff.user_id}/roles",
        headers=owner.headers,
        json={"role": "support", "expires_at": expires.isoformat()},
    )
    assert r.status_code == 200, r.text
    assert (await client.get("/v1/access/roles", headers=staff.headers)).status_code == 200
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
    # No revoke happened, no message was sent: the cached snapshot lapses with the grant.
    assert (await client.get("/v1/access/roles", headers=staff.headers)).status_code == 403
    assert "support" not in (await _me(client, staff))["roles"]  # type: ignore[operator]


async def test_deny_beats_allow(client: AsyncClient, app: FastAPI) -> None:
    owner = await signed_in(app, client, roles=("owner",), totp=True)
    staff = await signed_in(app, client, roles=("support",))
    assert (await client.get("/v1/access/roles", headers=staff.headers)).status_code == 200
    r = await client.post(
        f"/v1/access/users/{staff.user_id}/permissions",
        headers=owner.headers,
        json={"permission": "access:*", "effect": "deny"},
    )
    assert r.status_code == 200, r.text
    assert (await client.get("/v1/access/roles", headers=staff.headers)).status_code == 403
    r = await client.delete(
        f"/v1/access/users/{staff.user_id}/permissions/{r.json()['id']}", headers=owner.headers
    )
    assert r.status_code == 200
    assert (await client.get("/v1/access/roles", headers=staff.headers)).status_code == 200


async def test_nobody_grants_what_they_do_not_hold(client: AsyncClient, app: FastAPI) -> None:
    admin = await signed_in(app, client, roles=("admin",), totp=True)
    target = await make_user(app)
    r = await client.post(
        f"/v1/access/users/{target.user_id}/roles", headers=admin.headers, json={"role": "owner"}
    )
    assert r.status_code == 403
    assert "*:*" in r.json()["missing"]
    r = await client.post(
        f"/v1/access/users/{target.user_id}/permissions",
        headers=admin.headers,
        json={"permission": "settings:write"},
    )
    assert r.status_code == 403
    # Nor grant themselves more.
    r = await client.post(
        f"/v1/access/users/{admin.user_id}/roles", headers=admin.headers, json={"role": "owner"}
    )
    assert r.status_code == 403
    # What they hold, they may give.
    r = await client.post(
        f"/v1/access/users/{target.user_id}/roles", headers=admin.headers, json={"role": "support"}
    )
    assert r.status_code == 200
    # A role definition carrying more than the definer holds is refused too.
    r = await client.put("/v1/access/roles/superhero", headers=admin.headers, json={"permissions": ["*:*"]})
    assert r.status_code == 403


async def test_staff_without_grant_permission_cannot_grant(client: AsyncClient, app: FastAPI) -> None:
    support = await signed_in(app, client, roles=("support",), totp=True)
    target = await make_user(app)
    r = await client.post(
        f"/v1/access/users/{target.user_id}/roles", headers=support.headers, json={"role": "support"}
    )
    assert r.status_code == 403


async def test_the_last_owner_cannot_be_removed(client: AsyncClient, app: FastAPI) -> None:
    owner = await signed_in(app, client, roles=("owner",), totp=True)
    r = await client.delete(f"/v1/access/users/{owner.user_id}/roles/owner", headers=owner.headers)
    assert r.status_code == 409
    r = await client.post(
        f"/v1/access/users/{owner.user_id}/permissions",
        headers=owner.headers,
        json={"permission": "*", "effect": "deny"},
    )
    assert r.status_code == 409
    # With a second permanent owner, the first may step down.
    second = await make_user(app, roles=("owner",))
    r = await client.delete(f"/v1/access/users/{owner.user_id}/roles/owner", headers=owner.headers)
    assert r.status_code == 200
    assert second.user_id


async def test_admin_cannot_strip_an_owner(client: AsyncClient, app: FastAPI) -> None:
    admin = await signed_in(app, client, roles=("admin",), totp=True)
    owner = await make_user(app, roles=("owner",))
    await make_user(app, roles=("owner",))
    r = await client.delete(f"/v1/access/users/{owner.user_id}/roles/owner", headers=admin.headers)
    assert r.status_code == 403


async def test_grants_need_a_recent_step_up(client: AsyncClient, app: FastAPI) -> None:
    owner = await enrol_then_sign_in_again_without_step_up(app, client)
    target = await make_user(app)
    r = await client.post(
        f"/v1/access/users/{target.user_id}/roles", headers=owner.headers, json={"role": "support"}
    )
    assert r.status_code == 401 and r.json()["reason"] == "step-up-required"


async def enrol_then_sign_in_again_without_step_up(app: FastAPI, client: AsyncClient) -> Account:
    from datetime import timedelta

    from sqlalchemy import update

    from kirana.api.accounts.models import AuthSession
    from kirana.api.db.base import utcnow

    owner = await signed_in(app, client, roles=("owner",), totp=True)
    async with app.state.db.session() as session:
        await session.execute(update(AuthSession).values(two_factor_at=utcnow() - timedelta(hours=1)))
    await app.state.access.invalidate(owner.user_id)
    return owner


async def test_admin_permissions_need_2fa_enrolled(client: AsyncClient, app: FastAPI) -> None:
    admin = await signed_in(app, client, roles=("admin",))
    r = await client.get("/v1/audit/events", headers=admin.headers)
    assert r.status_code == 403 and r.json()["reason"] == "two-factor-required"
    assert (await _me(client, admin))["two_factor_required"] is True


async def test_scoped_staff_hand_out_only_their_scopes(client: AsyncClient, app: FastAPI) -> None:
    owner = await signed_in(app, client, roles=("owner",), totp=True)
    manager = await signed_in(app, client, roles=("admin",), totp=True)
    r = await client.put(
        f"/v1/access/users/{manager.user_id}/scopes", headers=owner.headers, json={"scopes": ["store:blr-1"]}
    )
    assert r.status_code == 200
    assert (await _me(client, manager))["scopes"] == ["store:blr-1"]
    clerk = await make_user(app)
    # An unscoped user is unrestricted: beyond a scoped manager until someone unscoped confines them.
    r = await client.put(
        f"/v1/access/users/{clerk.user_id}/scopes", headers=manager.headers, json={"scopes": ["store:blr-1"]}
    )
    assert r.status_code == 403
    r = await client.put(
        f"/v1/access/users/{clerk.user_id}/scopes",
        headers=owner.headers,
        json={"scopes": ["store:blr-1", "store:blr-2"]},
    )
    assert r.status_code == 200
    r = await client.put(
        f"/v1/access/users/{clerk.user_id}/scopes", headers=manager.headers, json={"scopes": ["store:blr-1"]}
    )
    assert r.status_code == 403  # the clerk still reaches store:blr-2, beyond the manager
    r = await client.put(
        f"/v1/access/users/{clerk.user_id}/scopes", headers=owner.headers, json={"scopes": ["store:blr-1"]}
    )
    ok = await client.put(
        f"/v1/access/users/{clerk.user_id}/scopes", headers=manager.headers, json={"scopes": ["store:blr-1"]}
    )
    assert ok.status_code == 200
    wider = await client.put(
        f"/v1/access/users/{clerk.user_id}/scopes", headers=manager.headers, json={"scopes": ["region:south"]}
    )
    unrestricted = await client.put(
        f"/v1/access/users/{clerk.user_id}/scopes", headers=manager.headers, json={"scopes": []}
    )
    assert wider.status_code == unrestricted.status_code == 403


async def test_role_hierarchy_inherits_and_rejects_cycles(client: AsyncClient, app: FastAPI) -> None:
    owner = await signed_in(app, client, roles=("owner",), totp=True)
    roles = {r["name"]: r for r in (await client.get("/v1/access/roles", headers=owner.headers)).json()}
    assert {"customer", "support", "catalog_manager", "store_manager", "admin", "owner"} <= set(roles)
    assert "catalog:write" not in roles["store_manager"]["permissions"]
    assert "catalog:*" in roles["store_manager"]["effective_permissions"]  # from catalog_manager
    r = await client.put("/v1/access/roles/support", headers=owner.headers, json={"parents": ["admin"]})
    assert r.status_code == 422 and "circle" in r.json()["detail"]
    r = await client.put(
        "/v1/access/roles/auditor",
        headers=owner.headers,
        json={"permissions": ["audit:read"], "parents": ["support"]},
    )
    assert r.status_code == 204


async def test_customer_sees_only_customer_permissions(client: AsyncClient, app: FastAPI) -> None:
    customer = await login(client, await make_user(app))
    me = await _me(client, customer)
    assert "orders:read_all" not in me["permissions"]  # type: ignore[operator]
    assert (await client.get("/v1/audit/events", headers=customer.headers)).status_code == 403
