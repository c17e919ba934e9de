"""Channel names, who may subscribe to them, and which outbox events reach which channel.

Pure decisions, no I/O: the hub asks `may_subscribe`, the workers' relay asks `route`. A domain
that wants its committed changes pushed to clients emits an outbox event whose topic is listed in
`ROUTES` (with `user_id` and/or `store_code` in the payload); nothing here imports that domain.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kirana.api.access.principal import Principal

# user:<uuid>:orders  - a customer's own orders (status changes, payment results, ETA)
# store:<code>:orders - a store's orders, for staff holding orders:read_all within that store
# delivery:<order id> - one delivery's live position and status; who may follow it needs the
#                       database, so the hub asks the authorizer the app registered for it
USER_ORDERS = re.compile(r"^user:([0-9a-f\-]{36}):orders$")
STORE_ORDERS = re.compile(r"^store:([a-z0-9][a-z0-9_\-]{0,62}):orders$")
DELIVERY = re.compile(r"^delivery:([0-9a-f\-]{36})$")
MAX_CHANNEL_LEN = 100
LOOKUP = "lookup"  # may_subscribe's answer for a channel whose authorizer must be asked


@dataclass(frozen=True)
class Route:
    """How an outbox topic becomes a message: the message type and whose channels get it."""

    type: str
    to_user: bool = True
    to_store: bool = False
    to_delivery: bool = False  # `delivery:<order_id>` from the payload


ROUTES: Mapping[str, Route] = {
    "order.status_changed": Route("order.status", to_user=True, to_store=True),
    "order.placed": Route("order.placed", to_user=True, to_store=True),
    "order.eta": Route("order.eta", to_user=True, to_delivery=True),
    "delivery.status_changed": Route("delivery.status", to_user=True, to_store=True, to_delivery=True),
    "delivery.position": Route("delivery.position", to_user=False, to_delivery=True),
    "payment.succeeded": Route("payment.result"),
    "payment.failed": Route("payment.result"),
    "payment.auto_refunded": Route("payment.refunded"),
    "loyalty.achievement_unlocked": Route("loyalty.achievement"),
    "payment.refund_updated": Route("payment.refund"),  # pending, processed or failed
}


# Message types after which the hub asks the channel's authorizer again about every socket on
# it: a delivery's status change may have given it to another agent.
RECHECK_AFTER = frozenset({"delivery.status"})


def user_orders(user_id: uuid.UUID | str) -> str:
    return f"user:{user_id}:orders"


def store_orders(store_code: str) -> str:
    return f"store:{store_code}:orders"


def delivery(order_id: uuid.UUID | str) -> str:
    return f"delivery:{order_id}"


def kind(channel: str) -> str:
    """The channel's kind (`user`, `store`, `delivery`), or "" for a name that is none of them."""
    if len(channel) > MAX_CHANNEL_LEN:
        return ""
    for name, pattern in (("user", USER_ORDERS), ("store", STORE_ORDERS), ("delivery", DELIVERY)):
        if pattern.match(channel):
            return name
    return ""


def valid(channel: str) -> bool:
    return bool(kind(channel))


def may_subscribe(principal: Principal, channel: str) -> str | None:
    """None when `principal` may follow `channel`, else the reason it may not; `LOOKUP` when the
    answer needs the authorizer registered for the channel's kind."""
    m = USER_ORDERS.match(channel)
    if m:
        if m.group(1) == str(principal.user_id):
            return None
        return "this channel belongs to another customer"
    m = STORE_ORDERS.match(channel)
    if m:
        if not principal.can("orders:read_all"):
            return "store channels need the orders:read_all permission"
        if not principal.in_scope(f"store:{m.group(1)}"):
            return "this store is outside your scopes"
        return None
    if DELIVERY.match(channel):
        return LOOKUP
    return "unknown channel"


def route(topic: str, payload: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The message type and the channels an outbox event goes to (no channels: not pushed)."""
    r = ROUTES.get(topic)
    if r is None:
        return "", []
    out: list[str] = []
    user = payload.get("user_id")
    if r.to_user and isinstance(user, str) and USER_ORDERS.match(user_orders(user)):
        out.append(user_orders(user))
    store = payload.get("store_code")
    if r.to_store and isinstance(store, str) and STORE_ORDERS.match(store_orders(store)):
        out.append(store_orders(store))
    order = payload.get("order_id")
    if r.to_delivery and isinstance(order, str) and DELIVERY.match(delivery(order)):
        out.append(delivery(order))
    return r.type, out
