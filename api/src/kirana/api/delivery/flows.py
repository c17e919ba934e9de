"""The delivery side of the socket: who may follow `delivery:<order id>`.

The real-time hub does not import this domain: the app's composition root hands
`channel_authorizer(db)` to the hub for the `delivery` channel kind, and the hub awaits it on
every subscription and on every access recheck of a connected user. Each check opens its own
short read-only transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from kirana.api.access.principal import Principal
from kirana.api.db.engine import Database
from kirana.api.delivery import service as delivery

Authorizer = Callable[[Principal, str], Awaitable[str | None]]
PREFIX = "delivery:"


def channel_authorizer(db: Database) -> Authorizer:
    """`(principal, "delivery:<order id>") -> None | reason`: the order's customer, the agent
    of its current delivery, and staff with deliveries:read_all in its store's scope."""

    async def authorize(principal: Principal, channel: str) -> str | None:
        try:
            order_id = uuid.UUID(channel.removeprefix(PREFIX))
        except ValueError:
            return "unknown channel"
        async with db.session() as session:
            d = await delivery.latest_for_order(session, order_id=order_id)
            return delivery.refusal(principal, d)

    return authorize
