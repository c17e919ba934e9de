"""Periodic jobs of payments: applying stored webhooks and reconciling with Razorpay.

Registered in `kirana.workers.main.JOBS`; also called by the `kirana payments` commands.
Refunds left pending (Razorpay slow to process them, or a crash between asking and settling)
are settled by `flows.settle_pending`.
Each webhook event and each reconciled order is its own transaction, so one that Razorpay
cannot answer for now is retried on the next run without holding back the others.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import func, select

from kirana.api.db.engine import Database
from kirana.api.orders.models import Order
from kirana.api.orders.states import Status
from kirana.api.payments import flows, metrics, webhooks
from kirana.api.payments import service as payments
from kirana.api.payments.gateway import Gateway, GatewayRefused, GatewayUnavailable
from kirana.api.payments.models import Checkout, LedgerEntry

log = logging.getLogger("kirana.payments")
RECONCILE_DAYS = 5


async def process_webhooks(db: Database, gateway: Gateway, *, max_events: int = 500) -> int:
    """Apply due webhook events one transaction each; stops at the first Razorpay outage."""
    done = 0
    while done < max_events:
        try:
            async with db.session() as session:
                n = await webhooks.process_due(session, gateway=gateway, limit=1)
        except (GatewayUnavailable, GatewayRefused) as exc:
            log.warning("webhook effect postponed: %s", exc)
            return done
        if not n:
            return done
        done += n
    return done


async def reconcile_pending(db: Database, gateway: Gateway, *, limit: int = 200) -> int:
    """For orders still pending with a Razorpay order, fetch their payments from Razorpay and
    apply what webhooks missed. Returns how many payments changed the shop."""
    async with db.session() as session:
        rows = (
            await session.execute(
                select(Checkout.razorpay_order_id)
                .join(Order, Order.id == Checkout.order_id)
                .where(
                    Order.status.in_(
                        # A confirmed (cash on delivery) order may also have been paid online
                        # first: a capture must still be found, and refunded.
                        [
                            Status.pending_payment.value,
                            Status.confirmed.value,
                            Status.expired.value,
                            Status.cancelled.value,
                        ]
                    )
                )
                .where(Order.paid_at.is_(None))
                # Razorpay releases authorizations not captured within days; older ones are
                # left to `kirana payments reconcile --date`.
                .where(Checkout.created_at >= func.now() - timedelta(days=RECONCILE_DAYS))
                .order_by(Checkout.created_at)
                .limit(limit)
            )
        ).all()
    changed = 0
    for (rp_order_id,) in rows:
        try:
            found = await gateway.order_payments(rp_order_id)
        except GatewayUnavailable:
            return changed
        for entity in found:
            if entity.get("status") not in ("authorized", "captured"):
                continue
            try:
                async with db.session() as session:
                    before = await session.scalar(
                        select(LedgerEntry.id).where(LedgerEntry.reference == f"captured:{entity['id']}")
                    )
                    await payments.apply_payment(session, gateway=gateway, entity=entity, source="reconciler")
            except (GatewayUnavailable, GatewayRefused) as exc:
                log.warning("reconcile postponed: %s", exc)
                return changed
            if before is None:
                changed += 1
                metrics.RECONCILED.inc()
    return changed


def jobs(gateway_of: Callable[[], Gateway]) -> list[tuple[str, float, Callable[[Database], Awaitable[int]]]]:
    """The periodic jobs of payments, for the worker's schedule."""

    async def run_webhooks(db: Database) -> int:
        return await process_webhooks(db, gateway_of())

    async def run_reconcile(db: Database) -> int:
        return await reconcile_pending(db, gateway_of())

    async def run_refunds(db: Database) -> int:
        return await flows.settle_pending(db, gateway_of())

    return [
        ("payments.process_webhooks", 0.5, run_webhooks),
        ("payments.reconcile", 60.0, run_reconcile),
        ("payments.settle_refunds", 30.0, run_refunds),
    ]
