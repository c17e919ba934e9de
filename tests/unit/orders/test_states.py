"""The order state machine, table-driven: every transition, every kind of actor."""

from __future__ import annotations

import pytest

from kirana.api.orders.states import TRANSITIONS, Actor, Status, decide, releases_stock

S = Status
ALL_STAFF = frozenset({"orders:update_status", "orders:cancel_any", "orders:refund"})

HAPPY_PATH = [S.pending_payment, S.paid, S.packed, S.shipped, S.out_for_delivery, S.delivered]


@pytest.mark.parametrize(("current", "target"), list(zip(HAPPY_PATH, HAPPY_PATH[1:], strict=False)))
def test_staff_walk_the_happy_path(current: Status, target: Status) -> None:
    assert decide(current, target, actor=Actor.staff, permissions=ALL_STAFF).allowed


@pytest.mark.parametrize("current", list(Status))
@pytest.mark.parametrize("target", list(Status))
def test_nothing_outside_the_table_is_allowed_even_for_the_system(current: Status, target: Status) -> None:
    d = decide(current, target, actor=Actor.system, was_paid=True)
    assert d.allowed == (target in TRANSITIONS[current])


@pytest.mark.parametrize(
    ("current", "target", "actor", "perms", "was_paid", "allowed", "needs"),
    [
        (S.pending_payment, S.cancelled, Actor.customer, frozenset(), False, True, None),
        (S.paid, S.cancelled, Actor.customer, frozenset(), True, True, None),
        (S.packed, S.cancelled, Actor.customer, frozenset(), True, False, None),
        (S.packed, S.cancelled, Actor.staff, frozenset({"orders:cancel_any"}), True, True, None),
        (
            S.packed,
            S.cancelled,
            Actor.staff,
            frozenset({"orders:update_status"}),
            True,
            False,
            "orders:cancel_any",
        ),
        (S.pending_payment, S.paid, Actor.customer, frozenset(), False, False, None),
        (S.pending_payment, S.paid, Actor.staff, frozenset({"orders:update_status"}), False, True, None),
        (S.pending_payment, S.expired, Actor.staff, ALL_STAFF, False, False, None),
        (S.pending_payment, S.expired, Actor.system, frozenset(), False, True, None),
        # Cash on delivery: only the payments flow confirms an order without payment.
        (S.pending_payment, S.confirmed, Actor.staff, ALL_STAFF, False, False, None),
        (S.pending_payment, S.confirmed, Actor.customer, frozenset(), False, False, None),
        (S.pending_payment, S.confirmed, Actor.system, frozenset(), False, True, None),
        (S.confirmed, S.cancelled, Actor.customer, frozenset(), False, True, None),
        (S.confirmed, S.packed, Actor.staff, frozenset({"orders:update_status"}), False, True, None),
        (S.confirmed, S.paid, Actor.system, frozenset(), False, False, None),
        (
            S.delivered,
            S.refunded,
            Actor.staff,
            frozenset({"orders:update_status"}),
            True,
            False,
            "orders:refund",
        ),
        (S.delivered, S.refunded, Actor.staff, frozenset({"orders:refund"}), True, True, None),
        (S.cancelled, S.refunded, Actor.staff, frozenset({"orders:refund"}), False, False, None),
        (S.cancelled, S.refunded, Actor.staff, frozenset({"orders:refund"}), True, True, None),
        (S.shipped, S.cancelled, Actor.staff, ALL_STAFF, True, False, None),
        (S.delivered, S.refunded, Actor.customer, frozenset(), True, False, None),
    ],
)
def test_who_may_do_what(
    current: Status,
    target: Status,
    actor: Actor,
    perms: frozenset[str],
    was_paid: bool,
    allowed: bool,
    needs: str | None,
) -> None:
    d = decide(current, target, actor=actor, permissions=perms, was_paid=was_paid)
    assert d.allowed is allowed, d.reason
    assert d.permission == needs
    assert allowed or d.reason


@pytest.mark.parametrize(
    ("current", "target", "releases"),
    [
        (S.pending_payment, S.expired, True),
        (S.pending_payment, S.cancelled, True),
        (S.paid, S.cancelled, True),
        (S.packed, S.cancelled, True),
        (S.cancelled, S.refunded, False),
        (S.delivered, S.refunded, False),
        (S.paid, S.packed, False),
    ],
)
def test_stock_goes_back_only_while_the_order_holds_it(
    current: Status, target: Status, releases: bool
) -> None:
    assert releases_stock(current, target) is releases
