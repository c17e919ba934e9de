"""Payment flows that span transactions: a staff refund, and settling refunds left pending.

`staff_refund` records the refund (one transaction), asks Razorpay outside any transaction, and
settles Razorpay's answer (another), so no database transaction is open while money moves and a
crash anywhere leaves a pending row that a retry or `settle_pending` completes with the same
`X-Refund-Idempotency`. Called by the refund route and `scheduled` (the worker's reconciler).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from kirana.api.access.principal import Principal
from kirana.api.audit import service as audit
from kirana.api.db.engine import Database
from kirana.api.payments import refunds
from kirana.api.payments import service as payments
from kirana.api.payments.auditing import write_audits
from kirana.api.payments.gateway import Gateway, GatewayRefused, GatewayUnavailable
from kirana.api.payments.models import Refund

# A pending refund younger than this may still be in the hands of the request that made it.
SETTLE_AFTER = timedelta(seconds=30)


@dataclass(frozen=True)
class Ask:
    """What Razorpay is asked for one refund row (read before its transaction ends)."""

    refund_id: uuid.UUID
    payment_id: str
    amount_paise: int
    key: str
    notes: dict[str, str]
    razorpay_refund_id: str | None


def _ask_of(row: Refund) -> Ask:
    return Ask(
        row.id,
        row.razorpay_payment_id,
        row.amount_paise,
        row.idempotency_key,
        refunds.notes_for(row),
        row.razorpay_refund_id,
    )


async def _ask(db: Database, gateway: Gateway, ask: Ask, ctx: audit.AuditContext) -> Refund:
    """Ask Razorpay (no transaction open), then settle its answer in a transaction."""
    try:
        entity = await gateway.refund(ask.payment_id, amount=ask.amount_paise, key=ask.key, notes=ask.notes)
    except GatewayRefused as exc:
        async with db.session() as session:
            await refunds.settle(session, refund_id=ask.refund_id, refused=str(exc), ctx=ctx)
            await write_audits(session)
        raise
    async with db.session() as session:
        row = await refunds.settle(session, refund_id=ask.refund_id, entity=entity, ctx=ctx)
        await write_audits(session)
        return row


async def staff_refund(
    db: Database,
    *,
    gateway: Gateway,
    order_id: uuid.UUID,
    amount_paise: int | None,
    reason: str | None,
    restock: bool,
    idempotency_key: str,
    actor: audit.AuditContext,
    principal: Principal,
    retry_after_s: int,
) -> None:
    """Refund captured money of an order; raises 503 (rows stay pending, settled later) when
    Razorpay does not answer, `RefundRefused` when it refuses."""
    async with db.session() as session:
        rows = await refunds.request(
            session,
            order_id=order_id,
            amount_paise=amount_paise,
            reason=reason,
            restock=restock,
            idempotency_key=idempotency_key,
            actor=actor,
            principal=principal,
        )
        asks = [_ask_of(r) for r in rows if r.status == "pending"]
    for ask in asks:
        try:
            await _ask(db, gateway, ask, actor)
        except GatewayUnavailable as exc:
            raise payments.unavailable(exc, retry_after_s=retry_after_s, operation="payment.refund") from exc
        except GatewayRefused as exc:
            raise refunds.RefundRefused(
                f"Razorpay refused the refund: {exc}", extra={"refund_id": str(ask.refund_id)}
            ) from exc


async def settle_pending(db: Database, gateway: Gateway, *, limit: int = 100) -> int:
    """Refunds still pending after `SETTLE_AFTER`: one Razorpay never answered for is asked
    again (same idempotency key: made once), one it accepted is fetched. Returns how many
    changed status; stops at the first Razorpay outage."""
    async with db.session() as session:
        rows = (
            await session.scalars(
                select(Refund)
                .where(Refund.status == "pending", Refund.created_at < func.now() - SETTLE_AFTER)
                .order_by(Refund.created_at)
                .limit(limit)
            )
        ).all()
        asks = [_ask_of(r) for r in rows]
    changed = 0
    for ask in asks:
        try:
            if ask.razorpay_refund_id:
                entity = await gateway.fetch_refund(ask.razorpay_refund_id)
                async with db.session() as session:
                    row = await refunds.settle(session, refund_id=ask.refund_id, entity=entity)
                    await write_audits(session)
            else:
                row = await _ask(db, gateway, ask, audit.SYSTEM)
        except GatewayRefused:
            changed += ask.razorpay_refund_id is None  # `_ask` settled it as failed
            continue
        except GatewayUnavailable:
            return changed
        changed += row.status != "pending"
    return changed
