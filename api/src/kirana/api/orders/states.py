"""The order state machine, pure: which transitions exist and who may make them.

Used by the orders service before every status change and tested table-driven in
tests/unit/commerce_order_states_test.py. Stock goes back on the shelf when an order that still
holds it is cancelled or expires (`releases_stock`). An order paid in cash on delivery is
`confirmed` instead of `paid` (only the payments flow confirms one, under its limits); it is
packed and delivered like a paid one and settled by the cash taken at the door.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    pending_payment = "pending_payment"
    confirmed = "confirmed"  # cash on delivery: to be paid at the door
    paid = "paid"
    packed = "packed"
    shipped = "shipped"
    out_for_delivery = "out_for_delivery"
    delivered = "delivered"
    cancelled = "cancelled"
    expired = "expired"
    refunded = "refunded"


class Actor(StrEnum):
    customer = "customer"  # the order's owner
    staff = "staff"
    system = "system"  # workers: reservation expiry, payment webhooks


S = Status

TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.pending_payment: frozenset({S.paid, S.confirmed, S.cancelled, S.expired}),
    S.confirmed: frozenset({S.packed, S.cancelled}),
    S.paid: frozenset({S.packed, S.cancelled}),
    S.packed: frozenset({S.shipped, S.cancelled}),
    S.shipped: frozenset({S.out_for_delivery}),
    S.out_for_delivery: frozenset({S.delivered}),
    S.delivered: frozenset({S.refunded}),
    S.cancelled: frozenset({S.refunded}),  # only when it had been paid
    S.expired: frozenset(),
    S.refunded: frozenset(),
}

# The permission a staff member needs to move an order into each status.
STAFF_PERMISSION: dict[Status, str] = {
    S.confirmed: "orders:update_status",  # never granted: see SYSTEM_ONLY
    S.paid: "orders:update_status",
    S.packed: "orders:update_status",
    S.shipped: "orders:update_status",
    S.out_for_delivery: "orders:update_status",
    S.delivered: "orders:update_status",
    S.cancelled: "orders:cancel_any",
    S.refunded: "orders:refund",
}

# What the customer may do to their own order: cancel before it is packed.
CUSTOMER_MAY: dict[Status, frozenset[Status]] = {
    S.pending_payment: frozenset({S.cancelled}),
    S.paid: frozenset({S.cancelled}),
    S.confirmed: frozenset({S.cancelled}),
}

# Only the system makes these: the reservation timer, and the cash-on-delivery checks.
SYSTEM_ONLY = {
    S.expired: "only the reservation timer expires orders",
    S.confirmed: ("only choosing cash on delivery confirms an order without payment"),
}

HOLDS_STOCK = frozenset({S.pending_payment, S.confirmed, S.paid, S.packed})
TERMINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    permission: str | None = None  # set when refused for want of this permission


def decide(
    current: Status,
    target: Status,
    *,
    actor: Actor,
    permissions: frozenset[str] = frozenset(),
    was_paid: bool = False,
) -> Decision:
    """May `actor` move an order from `current` to `target`? `permissions` are already resolved
    (the caller passes the concrete permissions the principal holds, wildcards expanded)."""
    if target not in TRANSITIONS[current]:
        return Decision(False, f"an order that is {current.value} cannot become {target.value}")
    if target is S.refunded and current is S.cancelled and not was_paid:
        return Decision(False, "nothing to refund: this order was never paid")
    if actor is Actor.system:
        return Decision(True)
    if target in SYSTEM_ONLY:
        return Decision(False, SYSTEM_ONLY[target])
    if actor is Actor.customer:
        if target in CUSTOMER_MAY.get(current, frozenset()):
            return Decision(True)
        return Decision(False, f"you cannot change an order that is {current.value} to {target.value}")
    needed = STAFF_PERMISSION[target]
    if needed in permissions:
        return Decision(True)
    return Decision(False, f"requires {needed}", permission=needed)


def releases_stock(current: Status, target: Status) -> bool:
    return current in HOLDS_STOCK and target in (S.cancelled, S.expired)
