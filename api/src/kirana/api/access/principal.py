"""The authenticated caller as every route sees it, and the pure permission check.

Permissions are `resource:action` strings; a grant may use wildcards (`orders:*`, `*:read`,
`*`). An explicit deny beats any allow. Staff scopes (e.g. `store:blr-1`, `region:south`) limit
which resources a staff member reaches; an empty scope set means no restriction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import lru_cache


def _split(permission: str) -> tuple[str, str]:
    resource, _, action = permission.partition(":")
    return resource, action or "*"


@lru_cache(maxsize=4096)
def matches(grant: str, permission: str) -> bool:
    """Does `grant` (possibly with wildcards) cover the concrete `permission`?"""
    g_res, g_act = _split(grant)
    p_res, p_act = _split(permission)
    return g_res in ("*", p_res) and g_act in ("*", p_act)


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    permissions: frozenset[str] = frozenset()
    denied: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    session_id: uuid.UUID | None = None
    two_factor_at: float | None = None  # unix time of the last 2FA verification in this session
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def can(self, permission: str) -> bool:
        if any(matches(d, permission) for d in self.denied):
            return False
        return any(matches(g, permission) for g in self.permissions)

    def in_scope(self, scope: str | None) -> bool:
        """May this staff member see a resource that belongs to `scope` (e.g. a store)?"""
        return not self.scopes or scope is None or scope in self.scopes
