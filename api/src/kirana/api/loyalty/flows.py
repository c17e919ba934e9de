"""What the workers run for loyalty: order events in, points, achievements and boards out.

`on_order_event` handles one `order.status_changed` event (delivered at least once, maybe out
of order across replicas) in one transaction: the award steps (`loyalty.awards`), then the
achievement rules for the customer (unlocks are emitted to the outbox in the same
transaction). After the commit it rewrites the customer's leaderboard scores from the ledger;
if the process dies in between, `kirana leaderboards check` shows it and `rebuild` mends it.
Also the staff and customer operations that must touch Redis after their commit.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from redis.asyncio import Redis

from kirana.api.db.engine import Database
from kirana.api.loyalty import awards, leaderboards, unlocking
from kirana.api.loyalty import service as loyalty
from kirana.api.settings import LoyaltySettings

log = logging.getLogger("kirana.loyalty")

TOPIC = "order.status_changed"
REFUND_TOPIC = "payment.refund_updated"  # emitted by payments.refunds


async def on_order_event(
    db: Database, redis: Redis, *, payload: dict[str, Any], settings: LoyaltySettings
) -> bool:
    """Apply one order status change; True when it changed the customer's points."""
    to = payload.get("to")
    order_id = uuid.UUID(str(payload["order_id"]))
    changed: awards.Credited | None = None
    async with db.session() as session:
        if to == "paid":
            return await awards.on_paid(session, order_id=order_id, settings=settings)
        if to in ("cancelled", "expired"):
            return bool(await awards.on_unpaid_closed(session, order_id=order_id, reason=f"order {to}"))
        if to == "delivered":
            changed = await awards.on_delivered(session, order_id=order_id, settings=settings)
        elif to == "refunded":
            changed = await awards.on_refunded(session, order_id=order_id)
        else:
            return False
        if changed is not None:
            unlocked = await unlocking.evaluate_user(session, user_id=changed.user_id)
            if unlocked:
                log.info("achievements unlocked", extra={"user_id": str(changed.user_id), "rules": unlocked})
    if changed is None:
        return False
    async with db.session() as session:
        await leaderboards.refresh_users(session, redis, user_ids=[changed.user_id])
    return True


async def on_refund_event(db: Database, redis: Redis, *, payload: dict[str, Any]) -> bool:
    """A refund of the order's money was processed (in full or in part): reverse the same
    share of its points. Pending and failed refunds change nothing."""
    if payload.get("status") != "processed" or not payload.get("order_id"):
        return False
    async with db.session() as session:
        changed = await awards.on_partial_refund(session, order_id=uuid.UUID(str(payload["order_id"])))
    if changed is None:
        return False
    async with db.session() as session:
        await leaderboards.refresh_users(session, redis, user_ids=[changed.user_id])
    return True


async def set_opt_out(db: Database, redis: Redis, *, user_id: uuid.UUID, opt_out: bool) -> bool:
    """The customer's leaderboard choice, then their scores rewritten (gone when opted out)."""
    async with db.session() as session:
        await loyalty.set_opt_out(session, user_id=user_id, opt_out=opt_out)
    async with db.session() as session:
        await leaderboards.refresh_users(session, redis, user_ids=[user_id])
    return opt_out
