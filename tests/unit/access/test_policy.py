"""Pure access decisions: wildcards, deny, hierarchy, cycles, escalation, scopes, ownership."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from kirana.api.access import policy
from kirana.api.access.principal import Principal

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROLE_PERMS = {
    "customer": ("cart:*", "orders:read"),
    "support": ("orders:read_all",),
    "catalog_manager": ("catalog:*",),
    "store_manager": ("orders:refund",),
    "owner": ("*:*",),
}
PARENTS = {"store_manager": ("support", "catalog_manager"), "owner": ("store_manager",)}


def p(*perms: str, denied: tuple[str, ...] = (), scopes: tuple[str, ...] = ()) -> Principal:
    return Principal(
        user_id=uuid.uuid4(), permissions=frozenset(perms), denied=frozenset(denied), scopes=frozenset(scopes)
    )


@pytest.mark.parametrize(
    ("grants", "denied", "check", "expected"),
    [
        (("orders:*",), (), "orders:refund", True),
        (("*:read",), (), "orders:read", True),
        (("*:read",), (), "orders:refund", False),
        (("*:*",), (), "anything:goes", True),
        (("*:*",), ("orders:refund",), "orders:refund", False),
        (("orders:*",), ("orders:*",), "orders:read", False),
        (("orders:read",), (), "orders:read_all", False),
    ],
)
def test_wildcards_and_deny(
    grants: tuple[str, ...], denied: tuple[str, ...], check: str, expected: bool
) -> None:
    assert p(*grants, denied=denied).can(check) is expected


def test_effective_inherits_parents_and_drops_expired_grants() -> None:
    grants = [
        policy.Grant("role", "store_manager"),
        policy.Grant("allow", "reports:read", NOW + timedelta(hours=1)),
        policy.Grant("role", "owner", NOW - timedelta(seconds=1)),  # expired
        policy.Grant("deny", "catalog:delete"),
    ]
    eff = policy.effective(grants, role_perms=ROLE_PERMS, parents=PARENTS, now=NOW)
    assert eff.roles == {"store_manager", "support", "catalog_manager"}
    assert {"orders:refund", "orders:read_all", "catalog:*", "reports:read"} == eff.permissions
    assert eff.denied == {"catalog:delete"}
    assert eff.valid_until == NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("parents", "cyclic"),
    [
        ({"a": ("b",), "b": ("c",)}, False),
        ({"a": ("b",), "b": ("a",)}, True),
        ({"a": ("a",)}, True),
        ({"a": ("b", "c"), "c": ("d",), "d": ("a",)}, True),
        ({"a": ("b", "c"), "b": ("d",), "c": ("d",)}, False),  # a diamond is fine
    ],
)
def test_find_cycle(parents: dict[str, tuple[str, ...]], cyclic: bool) -> None:
    assert (policy.find_cycle(parents) is not None) is cyclic


@pytest.mark.parametrize(
    ("granter", "wanted", "missing"),
    [
        (p("orders:*"), ["orders:refund", "orders:read"], []),
        (p("orders:read"), ["orders:*"], ["orders:*"]),
        (p("*:*"), ["*:*"], []),
        (p("*:*", denied=("orders:refund",)), ["orders:*"], ["orders:*"]),
        (p("*:*", denied=("orders:refund",)), ["orders:refund"], ["orders:refund"]),
        (p("access:grant"), ["access:grant", "audit:read"], ["audit:read"]),
    ],
)
def test_escalation_check(granter: Principal, wanted: list[str], missing: list[str]) -> None:
    assert policy.missing_to_grant(granter, wanted) == missing


@pytest.mark.parametrize(
    ("own", "give", "ok"),
    [
        ((), ["store:blr-1"], True),
        ((), [], True),
        (("store:blr-1",), ["store:blr-1"], True),
        (("store:blr-1",), ["store:blr-2"], False),
        (("store:blr-1",), [], False),  # unrestricted is more than a scoped granter has
    ],
)
def test_scopes_within(own: tuple[str, ...], give: list[str], ok: bool) -> None:
    assert policy.scopes_within(frozenset(own), give) is ok


def test_resource_level_access() -> None:
    me = p("orders:read")
    other = uuid.uuid4()
    assert policy.can_reach(me, owner_id=me.user_id, any_permission="orders:read_all")
    assert not policy.can_reach(me, owner_id=other, any_permission="orders:read_all")
    staff = p("orders:read_all", scopes=("store:blr-1",))
    assert policy.can_reach(staff, owner_id=other, scope="store:blr-1", any_permission="orders:read_all")
    assert not policy.can_reach(staff, owner_id=other, scope="store:del-1", any_permission="orders:read_all")


def test_privileged_permissions_need_two_factor() -> None:
    assert policy.needs_two_factor({"*:*"}, set())
    assert policy.needs_two_factor({"orders:refund"}, set())
    assert not policy.needs_two_factor({"cart:*", "orders:read"}, set())
    assert not policy.needs_two_factor({"orders:refund"}, {"orders:refund"})
