"""Limits on who may change whose access: scoped staff stay within their stores, nobody widens
their own access, grants last no longer than the granter's own, and races answer 409."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text

from tests.integration.access.helpers import Account, login, make_user, signed_in, step_up_with_password


async def _scope(client: AsyncClient, by: Account, user_id: uuid.UUID, scopes: list[str]) -> int:
    r = await client.put(f"/v1/access/users/{user_id}/scopes", headers=by.headers, json={"scopes": scopes})
    return r.status_code


async def _grant(
    client: AsyncClient, by: Account, user_id: uuid.UUID, role: str, expires_at: datetime | None = None
) -> int:
    body: dict[str, str] = {"role": role}
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat()
    r = await client.post(f"/v1/access/users/{user_id}/roles", headers=by.headers, json=body)
    return r.status_code


async def _roles(client: AsyncClient, by: Account, user_id: uuid.UUID) -> dict[str, str | None]:
    r = await client.get(f"/v1/access/users/{user_id}", headers=by.headers)
    assert r.status_code == 200, r.text
    return {g["role"]: g["expires_at"] for g in r.json()["roles"]}


async def test_scoped_staff_cannot_reach_unscoped_or_foreign_users(client: AsyncClient, app: FastAPI) -> None:
    owner = await signed_in(app, client, roles=("owner",), totp=True)
    manager = await signed_in(app, client, roles=("admin",), totp=True)
    assert await _scope(client, owner, manager.user_id, ["store:blr-1"]) == 200
    # An unscoped customer given store_manager would manage every store: refused.
    unscoped = await make_user(app)
    assert await _grant(client, manager, unscoped.user_id, "store_manager") == 403
    r = await client.post(
        f"/v1/access/users/{unscoped.user_id}/permissions",
        headers=manager.headers,
        json={"permission": "orders:read_all"},
    )
    assert r.status_code == 403
    assert "store_manager" not in await _roles(client, owner, unscoped.user_id)
    # Nor may the manager confine (or strip) the unrestricted owner.
    other_owner = await make_user(app, roles=("owner",))
    assert await _scope(client, manager, other_owner.user_id, ["store:blr-1"]) == 403
    # A user of another store is out of reach; one of the manager's own store is not.
    foreign = await make_user(app)
    assert await _scope(client, owner, foreign.user_id, ["store:blr-2"]) == 200
    assert await _grant(client, manager, foreign.user_id, "support") == 403
    local = await make_user(app)
    assert await _scope(client, owner, local.user_id, ["store:blr-1"]) == 200
    assert await _grant(client, manager, local.user_id, "store_manager") == 200
    r = await client.delete(f"/v1/access/users/{local.user_id}/roles/store_manager", headers=manager.headers)
    assert r.status_code == 200
    # Role definitions apply to every store: not a scoped manager's to change.
    r = await client.put(
        "/v1/access/roles/auditor", headers=manager.headers, json={"permissions": ["audit:read"]}
    )
    assert r.status_code == 403
    r = await client.put(
        "/v1/access/roles/auditor", headers=owner.headers, json={"permissions": ["audit:read"]}
    )
    assert r.status_code == 204


async def test_nobody_extends_their_own_time_bound_access(client: AsyncClient, app: FastAPI) -> None:
    owner = await signed_in(app, client, roles=("owner",), totp=True)
    temp = await signed_in(app, client, totp=True)
    until = datetime.now(UTC) + timedelta(hours=1)
    assert await _grant(client, owner, temp.user_id, "admin", until) == 200
    # Re-granting themselves admin for good, or any other role: refused.
    assert await _grant(client, temp, temp.user_id, "admin") == 403
    assert await _grant(client, temp, temp.user_id, "support") == 403
    r = await client.post(
        f"/v1/access/users/{temp.user_id}/permissions",
        headers=temp.headers,
        json={"permission": "access:grant"},
    )
    assert r.status_code == 403
    assert datetime.fromisoformat(str((await _roles(client, owner, temp.user_id))["admin"])) == until
    # What they hand out to others ends when their own admin does.
    staff = await make_user(app)
    assert await _grant(client, temp, staff.user_id, "store_manager") == 200
    assert datetime.fromisoformat(str((await _roles(client, owner, staff.user_id))["store_manager"])) == until
    later = until + timedelta(days=1)
    assert await _grant(client, temp, staff.user_id, "support", later) == 200
    assert datetime.fromisoformat(str((await _roles(client, owner, staff.user_id))["support"])) == until
    sooner = until - timedelta(minutes=30)
    assert await _grant(client, temp, staff.user_id, "support", sooner) == 200
    assert datetime.fromisoformat(str((await _roles(client, owner, staff.user_id))["support"])) == sooner
    # An owner's own grants are not capped.
    assert await _grant(client, owner, staff.user_id, "catalog_manager") == 200
    assert (await _roles(client, owner, staff.user_id))["catalog_manager"] is None
    # A deny is a power over others too: it also ends when the granter's own hold does.
    r = await client.post(
        f"/v1/access/users/{staff.user_id}/permissions",
        headers=temp.headers,
        json={"permission": "orders:read_all", "effect": "deny"},
    )
    assert r.status_code == 200, r.text
    r = await client.get(f"/v1/access/users/{staff.user_id}", headers=owner.headers)
    deny = next(g for g in r.json()["permissions"] if g["effect"] == "deny")
    assert datetime.fromisoformat(deny["expires_at"]) == until


async def test_lifting_a_deny_on_yourself_is_refused(client: AsyncClient, app: FastAPI) -> None:
    owner = await signed_in(app, client, roles=("owner",), totp=True)
    admin = await signed_in(app, client, roles=("admin",), totp=True)
    r = await client.post(
        f"/v1/access/users/{admin.user_id}/permissions",
        headers=owner.headers,
        json={"permission": "audit:read", "effect": "deny"},
    )
    assert r.status_code == 200, r.text
    r = await client.delete(
        f"/v1/access/users/{admin.user_id}/permissions/{r.json()['id']}", headers=admin.headers
    )
    assert r.status_code == 403


async def test_role_names_are_validated(client: AsyncClient, app: FastAPI) -> None:
    owner = await signed_in(app, client, roles=("owner",), totp=True)
    for name in ("r" * 65, "Auditor", "9lives", "a-b"):
        r = await client.put(f"/v1/access/roles/{name}", headers=owner.headers, json={"permissions": []})
        assert r.status_code == 422, (name, r.text)
    r = await client.put(f"/v1/access/roles/{'r' * 64}", headers=owner.headers, json={"permissions": []})
    assert r.status_code == 204


async def _wait_until_blocked(app: FastAPI) -> None:
    """Until some other connection of this database waits on a row/index lock."""
    for _ in range(500):
        async with app.state.db.session() as s:
            waiting = await s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the racing request never blocked")


async def test_a_grant_racing_the_same_grant_answers_409_not_500(client: AsyncClient, app: FastAPI) -> None:
    owner = await signed_in(app, client, roles=("owner",), totp=True)
    target = await make_user(app)
    async with app.state.db.session() as other:
        # Another request's grant of the same role, not committed yet.
        await other.execute(
            text("INSERT INTO user_roles (id, user_id, role, granted_at) VALUES (:id, :u, 'support', now())"),
            {"id": uuid.uuid4(), "u": target.user_id},
        )
        racing = asyncio.create_task(_grant(client, owner, target.user_id, "support"))
        await _wait_until_blocked(app)
    assert await racing == 409


async def test_an_email_change_racing_another_answers_409_not_500(client: AsyncClient, app: FastAPI) -> None:
    me = await login(client, await make_user(app))
    await step_up_with_password(client, me)
    someone = await make_user(app)
    email = f"same{uuid.uuid4().hex[:8]}@example.com"
    r = await client.patch("/v1/auth/me", headers=me.headers, json={"email": email})
    assert r.status_code == 202, r.text
    code = app.state.access.notifier.email.sent[-1].text.split(": ")[1][:6]
    async with app.state.db.session() as other:
        await other.execute(
            text("UPDATE users SET email = :e WHERE id = :u"), {"e": email, "u": someone.user_id}
        )
        confirm = {"kind": "email", "code": code}
        racing = asyncio.create_task(client.post("/v1/auth/me/verify", headers=me.headers, json=confirm))
        await _wait_until_blocked(app)
    r = await racing
    assert r.status_code == 409, r.text


async def test_a_role_definition_racing_another_answers_409_not_500(
    client: AsyncClient, app: FastAPI
) -> None:
    owner = await signed_in(app, client, roles=("owner",), totp=True)
    async with app.state.db.session() as other:
        await other.execute(
            text("INSERT INTO roles (name, description, permissions) VALUES ('racer', '', '{}')")
        )
        racing = asyncio.create_task(
            client.put("/v1/access/roles/racer", headers=owner.headers, json={"permissions": ["audit:read"]})
        )
        await _wait_until_blocked(app)
    r = await racing
    assert r.status_code == 409, r.text
