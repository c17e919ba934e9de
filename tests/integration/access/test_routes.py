"""Every route declares an access rule, and the role x route authorization matrix holds."""

from __future__ import annotations

import inspect
import re
import uuid
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from httpx import AsyncClient

from kirana.api.access.deps import ACCESS_RULE_ATTR
from kirana.api.app import create_app
from kirana.api.settings import Settings
from tests.integration.access.helpers import Account, signed_in


def _rules(dependant: Dependant) -> list[tuple[str, tuple[str, ...]]]:
    found = []
    for dep in dependant.dependencies:
        rule = getattr(dep.call, ACCESS_RULE_ATTR, None)
        if rule is not None:
            found.append(rule)
        found.extend(_rules(dep))
    return found


def _api_routes(app: FastAPI) -> list[RouteContext]:
    """Every HTTP API route with its effective path and dependencies (router-level ones too),
    looking through included routers."""
    return [rc for rc in iter_route_contexts(app.routes) if isinstance(rc.original_route, APIRoute)]


def test_every_route_declares_an_access_rule(settings: Settings) -> None:
    app = create_app(settings, handle_signals=False)
    routes = _api_routes(app)
    assert len(routes) > 20  # the walk sees the routers' routes, not just the app's own
    undeclared = [f"{sorted(r.methods or ())} {r.path}" for r in routes if not _rules(r.dependant)]
    assert not undeclared, f"routes without Require/CurrentUser/OptionalUser/Public: {undeclared}"


def test_the_walk_catches_an_undeclared_route(settings: Settings) -> None:
    app = create_app(settings, handle_signals=False)

    @app.get("/sneaky")
    async def sneaky() -> dict[str, str]:
        return {}

    assert [r.path for r in _api_routes(app) if not _rules(r.dependant)] == ["/sneaky"]


def _sync_dependencies(dependant: Dependant) -> set[str]:
    found = set()
    for dep in dependant.dependencies:
        call = dep.call
        if call is not None and not (inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)):
            found.add(getattr(call, "__qualname__", repr(call)))
        found |= _sync_dependencies(dep)
    return found


def test_every_dependency_is_async(settings: Settings) -> None:
    """A plain `def` dependency runs in a worker thread on every request (a costly hop)."""
    app = create_app(settings, handle_signals=False)
    found: set[str] = set()
    for route in _api_routes(app):
        found |= _sync_dependencies(route.dependant)
    assert not found, f"make these `async def`: {sorted(found)}"

    @app.get("/blocking", dependencies=[])
    async def blocking(_: Annotated[int, Depends(lambda: 1)]) -> dict[str, str]:
        return {}

    assert any(_sync_dependencies(r.dependant) for r in _api_routes(app) if r.path == "/blocking"), (
        "the walk must see a sync dependency"
    )


ROLES = ("anonymous", "customer", "support", "catalog_manager", "store_manager", "admin", "owner")
ALL_USERS = set(ROLES) - {"anonymous"}
EVERYONE = set(ROLES)
ADMINS = {"admin", "owner"}
READERS = {"support", "store_manager", "admin", "owner"}  # access:read

# Routes of the access domains with who may pass the access check. Routes of other domains are
# checked generically below from their declared permissions and the seeded roles.
MATRIX: dict[tuple[str, str], set[str]] = {
    ("GET", "/livez"): EVERYONE,
    ("POST", "/v1/auth/register"): EVERYONE,
    ("POST", "/v1/auth/register/verify"): EVERYONE,
    ("POST", "/v1/auth/login"): EVERYONE,
    ("POST", "/v1/auth/login/2fa"): EVERYONE,
    ("POST", "/v1/auth/login/2fa/sms"): EVERYONE,
    ("POST", "/v1/auth/refresh"): EVERYONE,
    ("POST", "/v1/auth/password/reset-request"): EVERYONE,
    ("POST", "/v1/auth/password/reset"): EVERYONE,
    ("GET", "/.well-known/jwks.json"): EVERYONE,
    ("GET", "/v1/auth/me"): ALL_USERS,
    ("GET", "/v1/auth/sessions"): ALL_USERS,
    ("GET", "/v1/auth/2fa"): ALL_USERS,
    ("PATCH", "/v1/auth/me"): ALL_USERS,
    ("POST", "/v1/auth/me/verify"): ALL_USERS,
    ("POST", "/v1/auth/2fa/disable"): ALL_USERS,
    ("GET", "/v1/access/roles"): READERS,
    ("GET", "/v1/access/users/{user_id}"): READERS,
    ("PUT", "/v1/access/roles/{name}"): ADMINS,
    ("POST", "/v1/access/users/{user_id}/roles"): ADMINS,
    ("DELETE", "/v1/access/users/{user_id}/roles/{role}"): ADMINS,
    ("POST", "/v1/access/users/{user_id}/permissions"): ADMINS,
    ("DELETE", "/v1/access/users/{user_id}/permissions/{grant_id}"): ADMINS,
    ("PUT", "/v1/access/users/{user_id}/scopes"): ADMINS,
    ("GET", "/v1/audit/events"): ADMINS,
    ("GET", "/v1/audit/export"): ADMINS,
    ("POST", "/v1/auth/password"): ALL_USERS,
    ("POST", "/v1/auth/2fa/totp"): ALL_USERS,
    ("POST", "/v1/auth/2fa/totp/confirm"): ALL_USERS,
    ("POST", "/v1/auth/2fa/sms"): ALL_USERS,
    ("POST", "/v1/auth/2fa/sms/confirm"): ALL_USERS,
    ("POST", "/v1/auth/2fa/recovery-codes"): ALL_USERS,
    ("POST", "/v1/auth/step-up"): ALL_USERS,
    ("POST", "/v1/auth/step-up/sms"): ALL_USERS,
    ("DELETE", "/v1/auth/sessions/{session_id:uuid}"): ALL_USERS,
    # These end the caller's session(s): last.
    ("POST", "/v1/auth/sessions/revoke-all"): ALL_USERS,
    ("POST", "/v1/auth/logout"): ALL_USERS,
}


# A value each typed path parameter takes (a route whose parameter does not match is not reached).
_SAMPLES = {"{role}": "customer", "{token_id:razorpay_token}": "token_NoSuchToken01"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: _SAMPLES.get(m.group(0), str(uuid.uuid4())), path)


@pytest.fixture
async def accounts(app: FastAPI, client: AsyncClient) -> dict[str, Account | None]:
    out: dict[str, Account | None] = {"anonymous": None}
    for role in ROLES[1:]:
        roles = (role,) if role == "customer" else ("customer", role)
        out[role] = await signed_in(app, client, roles=roles, totp=True)  # step-up before enrolling is fresh
    return out


async def _allowed(client: AsyncClient, method: str, path: str, account: Account | None) -> tuple[bool, int]:
    headers = account.headers if account else {}
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {"keep_current": True} if path.endswith("revoke-all") else {}
    r = await client.request(method, _concrete(path), **kwargs)
    # 401/403 come from the access rule; anything else (200, 404, 422, ...) means it let us through.
    return r.status_code not in (401, 403), r.status_code


async def test_authorization_matrix(
    app: FastAPI, client: AsyncClient, accounts: dict[str, Account | None]
) -> None:
    present = {(m, r.path) for r in _api_routes(app) for m in r.methods or ()}
    missing = [k for k in MATRIX if k not in present]
    assert not missing, f"matrix names routes that do not exist: {missing}"
    ours = {k for k in present if k[1].startswith(("/v1/auth", "/v1/access", "/v1/audit", "/.well-known"))}
    assert not ours - set(MATRIX), f"access routes missing from the matrix: {sorted(ours - set(MATRIX))}"
    wrong = []
    for (method, path), allowed_roles in MATRIX.items():
        for role in ROLES:
            allowed, status = await _allowed(client, method, path, accounts[role])
            if allowed != (role in allowed_roles):
                wrong.append(f"{role} {method} {path}: got {status}")
    assert not wrong, "\n".join(wrong)


async def test_routes_of_other_domains_follow_their_declared_permissions(
    app: FastAPI, client: AsyncClient, accounts: dict[str, Account | None]
) -> None:
    """Anonymous callers are refused by every non-public route; a role passes a `Require` iff
    its effective permissions cover it."""
    from kirana.api.access.principal import Principal

    held = {}
    for role in ROLES[1:]:
        account = accounts[role]
        assert account is not None
        me = (await client.get("/v1/auth/me", headers=account.headers)).json()
        held[role] = Principal(user_id=account.user_id, permissions=frozenset(me["permissions"]))
    wrong = []
    for route in _api_routes(app):
        rules = _rules(route.dependant)
        for method in route.methods or ():
            if (method, route.path) in MATRIX or route.path == "/readyz":
                continue
            kinds = {k for k, _ in rules}
            if "public" in kinds and len(kinds) == 1:
                continue
            allowed, status = await _allowed(client, method, route.path, None)
            if allowed:
                wrong.append(f"anonymous {method} {route.path}: got {status}")
            needed = [p for k, perms in rules if k == "require" for p in perms]
            for role in ROLES[1:]:
                account = accounts[role]
                expect = all(held[role].can(x) for x in needed)
                allowed, status = await _allowed(client, method, route.path, account)
                if allowed != expect:
                    wrong.append(f"{role} {method} {route.path}: got {status}, expected allowed={expect}")
    assert not wrong, "\n".join(wrong)
