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

import hashlib
import ipaddress
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


def known_ip(host: str | None) -> str | None:
    """The client address the per-address cap counts, if it names a client: a global address.
    A private, loopback or link-local one is the proxy itself (its forwarded headers not
    trusted, see `KIRANA_FORWARDED_ALLOW_IPS`) or an internal caller, and counting it would
    cap the whole shop as one client."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return None
    return str(address) if address.is_global else None


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


def held_by_ip(rows: Iterable[Mapping[str, Any]]) -> dict[str, Held]:
    """Each address's unpaid orders from UNPAID_BY_IP_SELECT rows (client_ip, order_id)."""
    out: dict[str, Held] = {}
    for row in rows:
        out.setdefault(str(row["client_ip"]), Held()).orders.add(_uuid(row["order_id"]))
    return out


def check_ip(held: Held, max_orders: int) -> None:
    """Refuse (TooManyUnpaid) one more unpaid order from an address holding `held` already."""
    if max_orders and len(held.orders) + 1 > max_orders:
        metrics.UNPAID_CAP_REFUSALS.inc()
        raise TooManyUnpaid(
            f"at most {max_orders} unpaid orders at once from one network address; "
            "pay for or cancel an unpaid order first",
            extra={"max_unpaid_orders_per_ip": max_orders},
        )


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
IP_LOCK_CLASS = 0x4950  # "IP"


def lock_keys(user_ids: Iterable[uuid.UUID], ips: Iterable[str] = ()) -> list[tuple[int, int]]:
    """The (class, key) advisory locks that serialise placements of these customers and from
    these addresses, sorted: the order every placement takes them in. Two customers (or
    addresses) may share a key (32 bits); they then wait for each other, which costs time,
    never correctness."""
    keys = {(CUSTOMER_LOCK_CLASS, int.from_bytes(u.bytes[:4], "big", signed=True)) for u in user_ids}
    for ip in ips:
        digest = hashlib.blake2b(ip.encode(), digest_size=4).digest()
        keys.add((IP_LOCK_CLASS, int.from_bytes(digest, "big", signed=True)))
    return sorted(keys)


def lock_params(locks: Iterable[tuple[int, int]]) -> dict[str, list[int]]:
    """The parameters of `orders.sql.HOLDER_LOCKS` for these locks (taken in their order)."""
    pairs = list(locks)
    return {"lock_classes": [c for c, _ in pairs], "lock_keys": [k for _, k in pairs]}


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)
