"""Caps on what one customer may hold unpaid: orders, reserved units, and units of one item.

An unpaid order reserves its stock until it is paid or its reservation expires, so without a cap
one account could take a product out of stock for every other shopper (two unpaid orders of 50
and 26 units did, in a review), and repeat that on every product. Placement
(`orders.placement.allocate`, for single orders and group-commit batches alike) refuses an order
that would take the customer past any of the caps of its `Policy`, with `409
too-many-unpaid-orders`, counting the orders accepted before it in the same batch. The
rows come from `orders.sql.UNPAID_SELECT`, which reads at most `Caps.orders` unpaid orders per
customer (a customer holding that many is refused whatever the units), through the partial
index of unpaid orders; a cap of 0 is off, and with all three off nothing is read. No I/O
(refusals are counted in `orders.metrics`).

The caps hold under concurrency because every placement transaction first takes an advisory
lock per customer (`lock_keys`, `orders.sql.HOLDER_LOCKS`), in key order, before it locks any
variant and in a statement of its own before the one that reads the holdings: a second
placement of the same customer (another request placed alone, another replica's batch) waits
for the first to commit and then reads what it placed. One order of keys for every path (single
orders, batches of many customers) means no two placements can deadlock on them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kirana.api.errors import Conflict
from kirana.api.orders import metrics


class TooManyUnpaid(Conflict):
    status, code, title = 409, "too-many-unpaid-orders", "Too many unpaid orders"


@dataclass(frozen=True)
class Caps:
    """The caps of one policy; 0 turns a cap off."""

    orders: int = 3  # unpaid orders at once
    units: int = 200  # units reserved by them, all items together
    units_per_item: int = 50  # units of one item reserved by them

    @property
    def any_on(self) -> bool:
        """Whether placement has to read what customers hold at all."""
        return bool(self.orders or self.units or self.units_per_item)

    @property
    def orders_read(self) -> int | None:
        """How many of a customer's unpaid orders decide every cap (None: all of them)."""
        return self.orders or None


@dataclass
class Held:
    """What a customer's unpaid orders reserve now."""

    orders: set[uuid.UUID] = field(default_factory=set)
    by_sku: dict[str, int] = field(default_factory=dict)

    @property
    def units(self) -> int:
        return sum(self.by_sku.values())


def held_of(rows: Iterable[Mapping[str, Any]]) -> dict[uuid.UUID, Held]:
    """Each customer's holdings from UNPAID_SELECT rows (user_id, order_id, sku, quantity)."""
    out: dict[uuid.UUID, Held] = {}
    for row in rows:
        held = out.setdefault(_uuid(row["user_id"]), Held())
        held.orders.add(_uuid(row["order_id"]))
        held.by_sku[row["sku"]] = held.by_sku.get(row["sku"], 0) + int(row["quantity"])
    return out


def check(held: Held, wanted: Mapping[str, int], caps: Caps) -> None:
    """Refuse (TooManyUnpaid) an order of `wanted` units per SKU on top of `held`."""
    try:
        _check(held, wanted, caps)
    except TooManyUnpaid:
        metrics.UNPAID_CAP_REFUSALS.inc()
        raise


def _check(held: Held, wanted: Mapping[str, int], caps: Caps) -> None:
    extra = {
        "max_unpaid_orders": caps.orders,
        "max_unpaid_units": caps.units,
        "max_unpaid_units_per_item": caps.units_per_item,
        "unpaid_orders": len(held.orders),
    }
    hint = "pay for or cancel an unpaid order first"
    if caps.orders and len(held.orders) + 1 > caps.orders:
        raise TooManyUnpaid(f"at most {caps.orders} unpaid orders at once; {hint}", extra=extra)
    if caps.units and held.units + sum(wanted.values()) > caps.units:
        raise TooManyUnpaid(f"unpaid orders may reserve at most {caps.units} units; {hint}", extra=extra)
    per_item = caps.units_per_item
    over = sorted(sku for sku, qty in wanted.items() if per_item and held.by_sku.get(sku, 0) + qty > per_item)
    if over:
        raise TooManyUnpaid(
            f"unpaid orders may reserve at most {caps.units_per_item} of one item "
            f"({', '.join(over)}); {hint}",
            extra={**extra, "skus": over},
        )


def take(held: Held, order_id: uuid.UUID, wanted: Mapping[str, int]) -> None:
    """Count an accepted order in the customer's holdings (for the orders after it)."""
    held.orders.add(order_id)
    for sku, qty in wanted.items():
        held.by_sku[sku] = held.by_sku.get(sku, 0) + qty


# The class (first key) of the customers' placement locks: the two-key form of PostgreSQL's
# advisory locks, so they can never meet the one-key locks of idempotency keys or the audit chain.
CUSTOMER_LOCK_CLASS = 0x4F52  # "OR"


def lock_keys(user_ids: Iterable[uuid.UUID]) -> list[tuple[int, int]]:
    """The (class, key) advisory locks that serialise these customers' placements, sorted: the
    order every placement takes them in. Two customers may share a key (32 bits of the id);
    they then wait for each other, which costs time, never correctness."""
    keys = {int.from_bytes(u.bytes[:4], "big", signed=True) for u in user_ids}
    return sorted((CUSTOMER_LOCK_CLASS, k) for k in keys)


def lock_params(locks: Iterable[tuple[int, int]]) -> dict[str, list[int]]:
    """The parameters of `orders.sql.HOLDER_LOCKS` for these locks (taken in their order)."""
    pairs = list(locks)
    return {"lock_classes": [c for c, _ in pairs], "lock_keys": [k for _, k in pairs]}


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)
