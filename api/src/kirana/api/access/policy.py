"""Pure decisions about roles and grants: hierarchy closure, cycles, effective permissions,
escalation checks and resource ownership. No I/O; the access service and the tests call these.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from kirana.api.access.principal import Principal, matches

PERMISSION_RE = re.compile(r"^(\*|[a-z][a-z0-9_]*):(\*|[a-z][a-z0-9_]*)$")
SCOPE_RE = re.compile(r"^(store|region):[a-z0-9][a-z0-9_\-]{0,62}$")
ROLE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# What a client may send as a permission: `resource:action` (either may be `*`) or `*` alone.
PERMISSION_INPUT_RE = re.compile(r"^(\*|(\*|[a-z][a-z0-9_]*):(\*|[a-z][a-z0-9_]*))$")

# Staff holding any of these must have two-factor authentication enabled to use them.
PRIVILEGED = (
    "access:grant",
    "access:manage_roles",
    "audit:read",
    "payments:refund",
    "loyalty:adjust",
    "orders:refund",
    "users:write",
)


def valid_permission(permission: str) -> bool:
    return bool(PERMISSION_RE.match(permission))


def find_cycle(parents: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle in the role graph (as a path that returns to its start), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = GREY
        stack.append(node)
        for parent in parents.get(node, ()):
            state = color.get(parent, WHITE)
            if state == GREY:
                return [*stack[stack.index(parent) :], parent]
            if state == WHITE:
                found = visit(parent)
                if found:
                    return found
        stack.pop()
        color[node] = BLACK
        return None

    for node in sorted(parents):
        if color.get(node, WHITE) == WHITE:
            found = visit(node)
            if found:
                return found
    return None


def closure(roles: Iterable[str], parents: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """The roles plus every ancestor they inherit from."""
    seen: set[str] = set()
    todo = list(roles)
    while todo:
        role = todo.pop()
        if role in seen:
            continue
        seen.add(role)
        todo.extend(parents.get(role, ()))
    return frozenset(seen)


def role_permissions(
    role: str, role_perms: Mapping[str, Iterable[str]], parents: Mapping[str, Iterable[str]]
) -> frozenset[str]:
    return frozenset(p for r in closure([role], parents) for p in role_perms.get(r, ()))


@dataclass(frozen=True)
class Grant:
    """A role or a direct permission given to a user, possibly expiring."""

    kind: str  # "role" | "allow" | "deny"
    value: str
    expires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True)
class Effective:
    roles: frozenset[str]
    permissions: frozenset[str]
    denied: frozenset[str]
    valid_until: datetime | None  # when the earliest time-bound grant lapses


def effective(
    grants: Iterable[Grant],
    *,
    role_perms: Mapping[str, Iterable[str]],
    parents: Mapping[str, Iterable[str]],
    now: datetime,
) -> Effective:
    active = [g for g in grants if g.active(now)]
    direct_roles = [g.value for g in active if g.kind == "role"]
    roles = closure(direct_roles, parents)
    perms = {p for r in roles for p in role_perms.get(r, ())}
    perms |= {g.value for g in active if g.kind == "allow"}
    denied = frozenset(g.value for g in active if g.kind == "deny")
    expiries = [g.expires_at for g in active if g.expires_at is not None]
    return Effective(
        roles=frozenset(direct_roles) | roles,
        permissions=frozenset(perms),
        denied=denied,
        valid_until=min(expiries) if expiries else None,
    )


def holds_pattern(principal: Principal, pattern: str) -> bool:
    """Does the principal hold everything `pattern` (itself possibly a wildcard) covers?

    `orders:*` is held through `orders:*` or `*:*`, not through `orders:read`; and not at all
    when any deny overlaps it.
    """
    for d in principal.denied:
        if matches(d, pattern) or matches(pattern, d):
            return False
    return any(matches(g, pattern) for g in principal.permissions)


def missing_to_grant(granter: Principal, permissions: Iterable[str]) -> list[str]:
    """The permissions the granter would hand out without holding them (escalation)."""
    return sorted(p for p in set(permissions) if not holds_pattern(granter, p))


def scopes_within(granter_scopes: frozenset[str], scopes: Iterable[str]) -> bool:
    """A scoped staff member may only hand out (narrower or equal) scopes of their own; an empty
    set means unrestricted, which only an unrestricted granter may give."""
    wanted = set(scopes)
    if not granter_scopes:
        return True
    return bool(wanted) and wanted <= granter_scopes


def needs_two_factor(permissions: Iterable[str], denied: Iterable[str]) -> bool:
    p = Principal(user_id=uuid.UUID(int=0), permissions=frozenset(permissions), denied=frozenset(denied))
    return any(p.can(x) for x in PRIVILEGED)


def can_reach(
    principal: Principal, *, owner_id: uuid.UUID | None, scope: str | None = None, any_permission: str
) -> bool:
    """Resource-level access: the owner reaches their own resource; staff need `any_permission`
    (e.g. `orders:read_all`) and the resource's scope within theirs."""
    if owner_id is not None and owner_id == principal.user_id:
        return True
    return principal.can(any_permission) and principal.in_scope(scope)
