"""Razorpay webhooks: accept (signature, dedupe, persist) fast; apply later in the worker.

`accept` stores the event in one statement that is its own transaction (one round trip on the
hot path Razorpay retries against, no BEGIN/COMMIT around it) under its `X-Razorpay-Event-Id`; a duplicate
finds the key taken and is answered 200 without a second row. `process_due`
runs in the worker (`flows.process_webhooks`): it locks due events with SKIP LOCKED, applies
each through `service` and stamps it processed in the same transaction as its effect, so a
crash between the two repeats the effect idempotently rather than losing it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.db.base import utcnow
from kirana.api.db.engine import Database
from kirana.api.db.raw import Statement
from kirana.api.errors import InvalidInput
from kirana.api.payments import metrics, refunds
from kirana.api.payments import service as payments
from kirana.api.payments.gateway import Gateway, GatewayRefused
from kirana.api.payments.models import Checkout, WebhookEvent

PAYMENT_EVENTS = frozenset({"payment.authorized", "payment.captured", "payment.failed", "order.paid"})
REFUND_EVENTS = frozenset({"refund.created", "refund.processed", "refund.failed"})


class WebhookMalformed(InvalidInput):
    status, code, title = 400, "webhook-malformed", "Webhook malformed"


def parse(raw_body: bytes, event_id: str | None) -> tuple[str, dict[str, Any]]:
    if not event_id or len(event_id) > 60:
        metrics.WEBHOOKS_RECEIVED.labels("malformed").inc()
        raise WebhookMalformed("X-Razorpay-Event-Id is missing or too long")
    try:
        body = json.loads(raw_body)
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("event"), str):
        metrics.WEBHOOKS_RECEIVED.labels("malformed").inc()
        raise WebhookMalformed("the body is not a Razorpay event")
    return event_id, body


# Raw asyncpg on the hot pool (`db.raw`, `Database.hot`): on this route SQLAlchemy's per-call
# work costs more than the round trip. The body goes in as the bytes Razorpay signed.
_STORE = Statement(
    text(
        "INSERT INTO payment_webhook_events (event_id, event, body, received_at)"
        " VALUES (:event_id, :event, CAST(:body AS jsonb), now())"
        " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    )
)


async def accept(db: Database, *, event_id: str, event: str, raw_body: bytes) -> bool:
    """Store the event once, in one autocommit statement; False for a duplicate delivery."""
    stored = await _STORE.fetchval_alone(
        db, {"event_id": event_id, "event": event[:60], "body": raw_body.decode()}
    )
    metrics.WEBHOOKS_RECEIVED.labels("accepted" if stored else "duplicate").inc()
    return stored is not None


def _entity(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    payload = body.get("payload")
    part = payload.get(name) if isinstance(payload, dict) else None
    entity = part.get("entity") if isinstance(part, dict) else None
    return entity if isinstance(entity, dict) else None


async def apply(session: AsyncSession, *, gateway: Gateway, ev: WebhookEvent) -> str:
    name = ev.event
    if name in PAYMENT_EVENTS:
        entity = _entity(ev.body, "payment")
        if entity is None or "id" not in entity or "amount" not in entity:
            return "malformed"
        known = await session.scalar(
            select(Checkout.id).where(Checkout.razorpay_order_id == str(entity.get("order_id") or ""))
        )
        if known is None:
            ev.flag = "unknown_order"
        row = await payments.apply_payment(session, gateway=gateway, entity=entity, source=f"webhook:{name}")
        return f"payment {row.status}"
    if name in REFUND_EVENTS:
        refund = _entity(ev.body, "refund")
        if refund is None or "id" not in refund:
            return "malformed"
        if name == "refund.failed":
            ev.flag = "refund_failed"  # for staff: the customer has not got the money back
            refund = {**refund, "status": "failed"}
        settled = await refunds.follow(session, entity=refund)
        return f"refund {settled.status}" if settled else "refund unknown_payment"
    return "ignored"


async def process_due(session: AsyncSession, *, gateway: Gateway, limit: int = 50) -> int:
    """Apply up to `limit` due events, oldest first, in the caller's transaction."""
    due = (
        await session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.processed_at.is_(None))
            .order_by(WebhookEvent.received_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for ev in due:
        name = ev.event  # read before a savepoint rollback can expire the row
        try:
            async with session.begin_nested():
                outcome = await apply(session, gateway=gateway, ev=ev)
        except GatewayRefused as exc:
            # Razorpay refuses the effect for good (a 4xx): settle the event for staff rather
            # than retry it for ever, which would hold back every later one. Its partial
            # effects are undone with the savepoint; the reconciler still follows the order.
            ev.flag, outcome = "gateway_refused", f"refused {exc}"[:200]
        ev.processed_at = utcnow()
        ev.outcome = outcome
        metrics.WEBHOOKS_PROCESSED.labels(name, outcome.split(" ")[0]).inc()
    return len(due)
