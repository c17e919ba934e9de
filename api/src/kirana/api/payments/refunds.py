"""Refunds: staff refunds (full or partial, never above what is left), automatic ones, and each
refund's status (pending, processed, failed) as Razorpay reports it.

Money leaving is made crash-safe in three steps (`flows.staff_refund` runs them): `request`
records the refund rows `pending` in one transaction (the cap counts pending refunds, so two
requests at once cannot pass it); Razorpay is asked outside any transaction; `settle` writes its
answer in another. A row's `idempotency_key` travels as `X-Refund-Idempotency`, so asking again
(a retried request, the reconciler after a crash) returns the same refund instead of a second.
The ledger's `refunded` row is written when a refund is processed; a failed one frees its amount.
The order becomes refunded when nothing is left paid, and its stock goes back when staff said the
goods came back (`restock`) on a delivered order. Called by `flows`, `service.auto_refund`,
`webhooks` and `scheduled`. No HTTP, no commit.

Longer than 400 lines because the three steps of a refund, and its status changes, are read
together when checking that money leaves once.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.access.principal import Principal
from kirana.api.audit import service as audit
from kirana.api.errors import InvalidInput, InvalidState, NotFound
from kirana.api.orders import service as orders
from kirana.api.orders.models import Order
from kirana.api.orders.states import Status
from kirana.api.outbox import service as outbox
from kirana.api.payments import metrics
from kirana.api.payments.auditing import audit_later, write_audits
from kirana.api.payments.models import LedgerEntry, Payment, Refund

FULLY_REFUNDABLE_FROM = frozenset({Status.delivered.value, Status.cancelled.value})
OPEN = ("pending", "processed")  # what counts against the cap
TOPIC = "payment.refund_updated"


class RefundTooLarge(InvalidInput):
    status, code, title = 422, "refund-exceeds-captured", "Refund exceeds what was captured"


class RefundRefused(InvalidState):
    status, code, title = 409, "refund-refused", "Razorpay refused the refund"


def refund_key(idempotency_key: str, payment_id: str) -> str:
    """Razorpay's refund idempotency key for one payment's share of one staff request."""
    return "staff-" + hashlib.sha256(f"{idempotency_key}|{payment_id}".encode()).hexdigest()[:40]


def request_key(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


async def left_per_payment(session: AsyncSession, order_id: uuid.UUID) -> list[tuple[Payment, int]]:
    """Each captured payment of the order with what is still refundable on it (captured minus
    refunds processed or pending)."""
    captured = dict(
        (
            await session.execute(
                select(LedgerEntry.razorpay_payment_id, func.sum(LedgerEntry.amount_paise))
                .where(LedgerEntry.order_id == order_id, LedgerEntry.kind == "captured")
                .group_by(LedgerEntry.razorpay_payment_id)
            )
        ).all()
    )
    refunded = dict(
        (
            await session.execute(
                select(Refund.razorpay_payment_id, func.sum(Refund.amount_paise))
                .where(Refund.order_id == order_id, Refund.status.in_(OPEN))
                .group_by(Refund.razorpay_payment_id)
            )
        ).all()
    )
    out = []
    for pid in sorted(p for p in captured if p):
        left = int(captured[pid]) - int(refunded.get(pid) or 0)
        if left > 0:
            row = await session.scalar(select(Payment).where(Payment.razorpay_payment_id == pid))
            assert row is not None
            out.append((row, left))
    return out


async def request(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    amount_paise: int | None,
    reason: str | None,
    restock: bool,
    idempotency_key: str,
    actor: audit.AuditContext,
    principal: Principal,
) -> list[Refund]:
    """Record a staff refund as pending rows, one per payment it draws on; a retry of the same
    request (same staff member, order and Idempotency-Key, as the route's key is scoped) finds
    its rows instead of making new ones."""
    order = await session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )
    if order is None or not principal.in_scope(orders.store_scope(order.store_code)):
        raise NotFound("no such order")
    rk = request_key(idempotency_key)
    mine = (
        await session.scalars(
            select(Refund)
            .where(Refund.request_key == rk, Refund.order_id == order.id, Refund.actor_id == actor.actor_id)
            .order_by(Refund.id)
        )
    ).all()
    if mine:
        return list(mine)
    left = await left_per_payment(session, order.id)
    refundable = sum(n for _, n in left)
    if refundable == 0:
        raise InvalidState("nothing captured is left to refund on this order")
    amount = refundable if amount_paise is None else amount_paise
    if amount > refundable:
        raise RefundTooLarge(
            f"at most {refundable} paise can still be refunded", extra={"refundable_paise": refundable}
        )
    rows, remaining = [], amount
    scoped = f"{actor.actor_id}|{order.id}|{idempotency_key}"  # as the route scopes the key
    for payment, available in left:
        part = min(available, remaining)
        if part <= 0:
            break
        row = Refund(
            order_id=order.id,
            razorpay_payment_id=payment.razorpay_payment_id,
            idempotency_key=refund_key(scoped, payment.razorpay_payment_id),
            request_key=rk,
            amount_paise=part,
            currency=payment.currency,
            status="pending",
            source="staff",
            reason=reason,
            restock=restock,
            actor_id=actor.actor_id,
        )
        session.add(row)
        rows.append(row)
        remaining -= part
    await session.flush()
    for row in rows:
        await audit.record(
            session,
            actor,
            action="payments.refund_requested",
            target_type="order",
            target_id=order.id,
            after={
                "refund_id": str(row.id),
                "payment": row.razorpay_payment_id,
                "amount_paise": row.amount_paise,
                "reason": reason,
                "restock": restock,
            },
        )
    return rows


def notes_for(row: Refund) -> dict[str, str]:
    return {
        "shop_order_id": str(row.order_id),
        "shop_refund_id": str(row.id),
        "reason": (row.reason or row.source)[:200],
    }


async def _lock(session: AsyncSession, refund_id: uuid.UUID) -> Refund:
    row = await session.scalar(
        select(Refund)
        .where(Refund.id == refund_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def settle(
    session: AsyncSession,
    *,
    refund_id: uuid.UUID,
    entity: dict[str, Any] | None = None,
    refused: str | None = None,
    ctx: audit.AuditContext = audit.SYSTEM,
) -> Refund:
    """Write what Razorpay said of a refund: its entity, or that it refused it (`refused`).
    Forward only: a processed or failed refund stays so. Idempotent. Its audit entries are
    queued (`service.audit_later`); the caller writes them last (`service.write_audits`)."""
    row = await _lock(session, refund_id)
    if entity is not None and row.razorpay_refund_id is None:
        row.razorpay_refund_id = str(entity["id"])
    if row.status != "pending":
        return row
    status = "failed" if refused is not None else str((entity or {}).get("status") or "pending")
    if status == "processed":
        await _processed(session, row=row, entity=entity or {}, ctx=ctx)
    elif status == "failed":
        row.status = "failed"
        row.failure_reason = (refused or str((entity or {}).get("error_description") or "failed"))[:200]
        metrics.REFUNDS.labels(row.source, "failed").inc()
        audit_later(
            session,
            ctx,
            action="payments.refund_failed",
            outcome="failed",
            target_type="order",
            target_id=row.order_id,
            after={"refund_id": str(row.id), "refund": row.razorpay_refund_id, "reason": row.failure_reason},
        )
        await _emit(session, row)
    await session.flush()
    return row


async def _processed(
    session: AsyncSession, *, row: Refund, entity: dict[str, Any], ctx: audit.AuditContext
) -> None:
    from kirana.api.payments import service as payments  # service's auto-refund builds on this

    row.status = "processed"
    amount = int(entity.get("amount") or row.amount_paise)
    row.amount_paise = amount
    await session.flush()  # the sums below count this refund
    await payments.ledger(
        session,
        kind="refunded",
        reference=f"refund:{row.razorpay_refund_id}",
        amount=amount,
        currency=row.currency,
        order_id=row.order_id,
        payment_id=row.razorpay_payment_id,
    )
    payment = await session.scalar(
        select(Payment).where(Payment.razorpay_payment_id == row.razorpay_payment_id).with_for_update()
    )
    if payment is not None:
        refunded = await session.scalar(
            select(func.coalesce(func.sum(Refund.amount_paise), 0)).where(
                Refund.razorpay_payment_id == row.razorpay_payment_id, Refund.status == "processed"
            )
        )
        if int(refunded or 0) >= payment.amount_paise:
            payments.forward(payment, "refunded")
    metrics.REFUNDS.labels(row.source, "processed").inc()
    audit_later(
        session,
        ctx,
        action="payments.refunded",
        target_type="order",
        target_id=row.order_id,
        after={
            "refund_id": str(row.id),
            "refund": row.razorpay_refund_id,
            "payment": row.razorpay_payment_id,
            "amount_paise": amount,
            "source": row.source,
            "reason": row.reason,
        },
    )
    await _emit(session, row)
    if row.order_id is not None:
        await _order_refunded(session, order_id=row.order_id, reason=row.reason)


async def _order_refunded(session: AsyncSession, *, order_id: uuid.UUID, reason: str | None) -> None:
    """The order becomes refunded once nothing paid is kept; stock back if staff said so."""
    from kirana.api.payments import service as payments

    order = await session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )
    if order is None or order.status not in FULLY_REFUNDABLE_FROM or order.paid_at is None:
        return
    totals = await payments.totals(session, order_id=order.id)
    pending = await session.scalar(
        select(func.count())
        .select_from(Refund)
        .where(Refund.order_id == order.id, Refund.status == "pending")
    )
    if totals.paid_paise != 0 or pending:
        return
    was = order.status
    await orders.transition(session, order_id=order.id, target=Status.refunded, principal=None, reason=reason)
    restock = await session.scalar(
        select(func.count())
        .select_from(Refund)
        .where(Refund.order_id == order.id, Refund.status == "processed", Refund.restock.is_(True))
    )
    if was == Status.delivered.value and restock:
        await orders.return_stock(session, order_id=order.id)
        audit_later(
            session,
            audit.SYSTEM,
            action="payments.refund_restocked",
            target_type="order",
            target_id=order.id,
            after={"reason": "the goods came back"},
        )


async def _emit(session: AsyncSession, row: Refund) -> None:
    user_id = (
        await session.scalar(select(Order.user_id).where(Order.id == row.order_id)) if row.order_id else None
    )
    outbox.emit(
        session,
        topic=TOPIC,
        key=str(row.order_id),
        payload={
            "order_id": str(row.order_id) if row.order_id else None,
            "user_id": str(user_id) if user_id else None,
            "refund_id": str(row.id),
            "razorpay_refund_id": row.razorpay_refund_id,
            "payment_id": row.razorpay_payment_id,
            "amount_paise": row.amount_paise,
            "status": row.status,
            "source": row.source,
        },
    )


async def auto_row(session: AsyncSession, *, order_id: uuid.UUID, payment: Payment, reason: str) -> Refund:
    """The (one) automatic full refund of a payment, recorded before Razorpay is asked."""
    await session.execute(
        insert(Refund)
        .values(
            id=uuid.uuid4(),
            order_id=order_id,
            razorpay_payment_id=payment.razorpay_payment_id,
            idempotency_key=f"auto-{payment.razorpay_payment_id}",
            amount_paise=payment.amount_paise,
            currency=payment.currency,
            status="pending",
            source="auto",
            reason=reason,
            restock=False,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    row = await session.scalar(
        select(Refund).where(Refund.idempotency_key == f"auto-{payment.razorpay_payment_id}")
    )
    assert row is not None
    return row


async def follow(session: AsyncSession, *, entity: dict[str, Any]) -> Refund | None:
    """A refund entity from Razorpay (webhook or fetch): find the shop's row (by Razorpay's id,
    else the `shop_refund_id` note for a row whose answer was lost), or record one made
    elsewhere (the dashboard), then settle it. None when its payment is unknown here."""
    rid = str(entity["id"])
    row = await session.scalar(select(Refund).where(Refund.razorpay_refund_id == rid))
    notes = entity.get("notes")
    if row is None and isinstance(notes, dict) and notes.get("shop_refund_id"):
        try:
            row = await session.get(Refund, uuid.UUID(str(notes["shop_refund_id"])))
        except ValueError:
            row = None
    if row is None:
        payment = await session.scalar(
            select(Payment).where(Payment.razorpay_payment_id == str(entity.get("payment_id") or ""))
        )
        if payment is None:
            return None
        await session.execute(
            insert(Refund)
            .values(
                id=uuid.uuid4(),
                order_id=payment.order_id,
                razorpay_payment_id=payment.razorpay_payment_id,
                razorpay_refund_id=rid,
                idempotency_key=f"razorpay-{rid}",
                amount_paise=int(entity["amount"]),
                currency=payment.currency,
                status="pending",
                source="razorpay",
                reason="made at Razorpay",
                restock=False,
            )
            .on_conflict_do_nothing()
        )
        row = await session.scalar(select(Refund).where(Refund.razorpay_refund_id == rid))
        if row is None:
            return None
    row = await settle(session, refund_id=row.id, entity=entity)
    await write_audits(session)
    return row


@dataclass(frozen=True)
class Summary:
    order_status: str
    captured_paise: int
    refunded_paise: int
    pending_paise: int
    paid_paise: int
    rows: list[Refund]

    @property
    def state(self) -> Literal["none", "partial", "full"]:
        if not self.refunded_paise:
            return "none"
        return "full" if self.refunded_paise >= self.captured_paise else "partial"


async def summary(session: AsyncSession, *, order_id: uuid.UUID) -> Summary:
    """An order's money and its refunds, for the refund route's answer."""
    from kirana.api.payments import service as payments

    order = await session.get(Order, order_id, populate_existing=True)
    assert order is not None
    totals = await payments.totals(session, order_id=order_id)
    rows = list(
        (
            await session.scalars(
                select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at)
            )
        ).all()
    )
    return Summary(
        order_status=order.status,
        captured_paise=totals.captured_paise,
        refunded_paise=totals.refunded_paise,
        pending_paise=sum(r.amount_paise for r in rows if r.status == "pending"),
        paid_paise=totals.paid_paise,
        rows=rows,
    )
