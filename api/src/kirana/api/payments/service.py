"""Paying orders: the Razorpay order for a shop order, applying Razorpay payments, the ledger.

`apply_payment` is the one place a Razorpay payment changes the shop. The verify route, the
webhook worker and the reconciler all call it, under the shop order's row lock, so whichever
comes first makes the transition and writes the ledger row, and the others find it done
(the ledger's unique `reference` makes that hold even without the lock). State only moves
forward: a payment captured is never made authorized or failed again.

Called by `router.py`, `scheduled.py` (worker jobs), `refunds.py` and the CLI. No HTTP, no
commit. Past 400 lines on purpose: checkout, verify and `apply_payment` with its capture and
auto-refund branches are the one path money takes, and read best in one place.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.audit import service as audit
from kirana.api.errors import InvalidInput, InvalidState, NotFound, Unavailable
from kirana.api.orders import service as orders
from kirana.api.orders.models import Order
from kirana.api.orders.states import Status
from kirana.api.outbox import service as outbox
from kirana.api.payments import metrics, refunds
from kirana.api.payments.auditing import audit_later, discard_audits, write_audits
from kirana.api.payments.gateway import Gateway, GatewayRefused, GatewayUnavailable
from kirana.api.payments.models import Checkout, LedgerEntry, Payment

FORWARD = {"created": 0, "failed": 1, "authorized": 2, "captured": 3, "refunded": 4}
PAID_STATUSES = frozenset({"paid", "packed", "shipped", "out_for_delivery", "delivered"})


class SignatureInvalid(InvalidInput):
    status, code, title = 400, "payment-signature-invalid", "Payment signature invalid"


class PaymentDeclined(InvalidState):
    status, code, title = 402, "payment-declined", "Payment declined"


def unavailable(exc: GatewayUnavailable, *, retry_after_s: int, operation: str) -> Unavailable:
    """The 503 (with Retry-After) for a gateway that did not answer, counted per operation."""
    metrics.GATEWAY_ERRORS.labels(operation).inc()
    return Unavailable(
        "the payment provider is not answering; nothing was charged twice, try again shortly",
        headers={"Retry-After": str(retry_after_s)},
        extra={"reason": str(exc)[:200]},
    )


# -- reading the ledger ------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    captured_paise: int
    refunded_paise: int
    cod_paise: int

    @property
    def paid_paise(self) -> int:
        return self.captured_paise + self.cod_paise - self.refunded_paise


async def totals(session: AsyncSession, *, order_id: uuid.UUID) -> Totals:
    """What the ledger holds for an order: captured, refunded and cash-on-delivery paise."""
    rows = dict(
        (
            await session.execute(
                select(LedgerEntry.kind, func.coalesce(func.sum(LedgerEntry.amount_paise), 0))
                .where(LedgerEntry.order_id == order_id)
                .group_by(LedgerEntry.kind)
            )
        ).all()
    )
    return Totals(
        int(rows.get("captured", 0)), int(rows.get("refunded", 0)), int(rows.get("cod_collected", 0))
    )


async def ledger(
    session: AsyncSession,
    *,
    kind: str,
    reference: str,
    amount: int,
    currency: str,
    order_id: uuid.UUID | None,
    payment_id: str | None,
) -> bool:
    """Append one money movement; False if `reference` was already entered (a replay)."""
    stmt = (
        insert(LedgerEntry)
        .values(
            kind=kind,
            reference=reference,
            amount_paise=amount,
            currency=currency,
            order_id=order_id,
            razorpay_payment_id=payment_id,
            created_at=func.now(),
        )
        .on_conflict_do_nothing(index_elements=["reference"])
        .returning(LedgerEntry.id)
    )
    return (await session.scalar(stmt)) is not None


# -- a Razorpay order for a shop order ---------------------------------------------------


@dataclass(frozen=True)
class CheckoutInfo:
    key_id: str
    razorpay_order_id: str
    amount_paise: int
    currency: str
    order_number: int
    methods: tuple[str, ...]


async def start_checkout(
    session: AsyncSession,
    *,
    gateway: Gateway,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    methods: tuple[str, ...],
    retry_after_s: int,
) -> CheckoutInfo:
    """The Razorpay order for this shop order, created once for what is due then (the total
    less the loyalty points on it, which are fixed from here on: `loyalty.service`)."""
    order = await session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )
    if order is None or order.user_id != user_id:
        raise NotFound("no such order")
    if order.status != Status.pending_payment.value:
        raise InvalidState(f"an order that is {order.status} cannot be paid", extra={"status": order.status})
    existing = await session.scalar(select(Checkout).where(Checkout.order_id == order.id))
    if existing is None:
        try:
            rp = await gateway.create_order(
                amount=order.due_paise,
                currency=order.currency,
                receipt=str(order.number),
                notes={"shop_order_id": str(order.id)},
            )
        except GatewayUnavailable as exc:
            raise unavailable(exc, retry_after_s=retry_after_s, operation="order.create") from exc
        existing = Checkout(
            order_id=order.id,
            razorpay_order_id=rp["id"],
            amount_paise=int(rp["amount"]),
            currency=rp["currency"],
        )
        session.add(existing)
        await session.flush()
        await audit.record(
            session,
            audit.AuditContext(actor_id=user_id),
            action="payments.checkout_created",
            target_type="order",
            target_id=order.id,
            after={"razorpay_order_id": rp["id"], "amount_paise": int(rp["amount"])},
        )
    return CheckoutInfo(
        key_id=gateway.config.key_id,
        razorpay_order_id=existing.razorpay_order_id,
        amount_paise=existing.amount_paise,
        currency=existing.currency,
        order_number=order.number,
        methods=methods,
    )


# -- verify (Checkout's handler) --------------------------------------------------------


async def verify(
    session: AsyncSession,
    *,
    gateway: Gateway,
    user_id: uuid.UUID,
    razorpay_order_id: str,
    razorpay_payment_id: str,
    razorpay_signature: str,
    retry_after_s: int,
) -> tuple[Order, Payment]:
    """Check Checkout's signature, then believe only what Razorpay says about the payment."""
    if not gateway.checkout_signature_ok(
        order_id=razorpay_order_id, payment_id=razorpay_payment_id, signature=razorpay_signature
    ):
        raise SignatureInvalid("the payment signature does not match this order and payment")
    checkout = await session.scalar(select(Checkout).where(Checkout.razorpay_order_id == razorpay_order_id))
    order = await session.get(Order, checkout.order_id) if checkout else None
    if checkout is None or order is None or order.user_id != user_id:
        raise NotFound("no such payment for your orders")
    try:
        entity = await gateway.fetch_payment(razorpay_payment_id)
    except GatewayUnavailable as exc:
        raise unavailable(exc, retry_after_s=retry_after_s, operation="payment.fetch") from exc
    except GatewayRefused as exc:
        raise NotFound("Razorpay does not know this payment") from exc
    if entity.get("order_id") != razorpay_order_id:
        raise SignatureInvalid("the payment belongs to another Razorpay order")
    try:
        payment = await apply_payment(session, gateway=gateway, entity=entity, source="verify")
    except GatewayUnavailable as exc:
        raise unavailable(exc, retry_after_s=retry_after_s, operation="payment.capture") from exc
    if payment.status == "failed":
        from kirana.api.payments.upi import failure_problem  # upi builds on this module

        raise failure_problem(payment.failure_reason or "payment_declined")
    await session.refresh(order)
    return order, payment


# -- applying what Razorpay says ---------------------------------------------------------


async def _lock_order(session: AsyncSession, razorpay_order_id: str) -> Order | None:
    checkout = await session.scalar(select(Checkout).where(Checkout.razorpay_order_id == razorpay_order_id))
    if checkout is None:
        return None
    return await session.scalar(
        select(Order)
        .where(Order.id == checkout.order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def _payment_row(session: AsyncSession, entity: dict[str, Any], order: Order | None) -> Payment:
    await session.execute(
        insert(Payment)
        .values(
            id=uuid.uuid4(),
            razorpay_payment_id=entity["id"],
            razorpay_order_id=entity.get("order_id") or "",
            order_id=order.id if order else None,
            method=str(entity.get("method") or "unknown")[:20],
            amount_paise=int(entity["amount"]),
            currency=str(entity.get("currency") or ""),
            status="created",
        )
        .on_conflict_do_nothing(index_elements=["razorpay_payment_id"])
    )
    row = await session.scalar(
        select(Payment)
        .where(Payment.razorpay_payment_id == entity["id"])
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


def forward(row: Payment, status: str) -> bool:
    """Move the row's status on; never back."""
    if FORWARD.get(status, -1) > FORWARD[row.status]:
        row.status = status
        return True
    return False


async def apply_payment(
    session: AsyncSession, *, gateway: Gateway, entity: dict[str, Any], source: str
) -> Payment:
    """Bring the shop in line with one Razorpay payment entity (fetched, or from a signed
    webhook). Captures authorized payments that match their order; a mismatch is flagged and
    left uncaptured (Razorpay releases it); a capture for an order already paid, or for an
    order that lapsed and whose stock is gone, is refunded. Idempotent. Its audit entries are
    written last (see `audit_later`)."""
    try:
        row = await _apply_payment(session, gateway=gateway, entity=entity, source=source)
    except BaseException:
        discard_audits(session)
        raise
    await write_audits(session)
    return row


async def _apply_payment(
    session: AsyncSession, *, gateway: Gateway, entity: dict[str, Any], source: str
) -> Payment:
    order = await _lock_order(session, str(entity.get("order_id") or ""))
    row = await _payment_row(session, entity, order)
    status = str(entity.get("status"))
    ctx = audit.SYSTEM
    if order is None:
        row.flag = row.flag or "unknown_order"
        metrics.WEBHOOK_UNKNOWN_ORDER.inc()
        forward(row, status)
        return row
    if status == "failed":
        if forward(row, "failed"):
            row.failure_reason = str(entity.get("error_reason") or "declined")[:60]
            metrics.FAILED.labels(row.failure_reason).inc()
            emit_result(session, order=order, row=row, topic="payment.failed")
        return row
    if status not in ("authorized", "captured", "refunded"):
        return row
    checkout = await session.scalar(select(Checkout).where(Checkout.order_id == order.id))
    assert checkout is not None
    if int(entity["amount"]) != checkout.amount_paise or entity.get("currency") != checkout.currency:
        if row.flag != "amount_mismatch":
            row.flag = "amount_mismatch"
            metrics.MISMATCH.inc()
            audit_later(
                session,
                ctx,
                action="payments.amount_mismatch",
                outcome="flagged",
                target_type="order",
                target_id=order.id,
                after={
                    "payment": entity["id"],
                    "amount": entity["amount"],
                    "currency": entity.get("currency"),
                    "expected": checkout.amount_paise,
                    "expected_currency": checkout.currency,
                },
            )
        forward(row, status)
        return row
    if status == "authorized" and FORWARD[row.status] < FORWARD["captured"]:  # captured or refunded: done
        try:
            entity = await gateway.capture(
                entity["id"], amount=checkout.amount_paise, currency=checkout.currency
            )
        except GatewayRefused:
            entity = await gateway.fetch_payment(entity["id"])  # captured meanwhile by another path?
            if entity.get("status") != "captured":
                raise
        status = str(entity["status"])
    if status in ("captured", "refunded"):
        await _captured(session, gateway=gateway, order=order, row=row, entity=entity, source=source)
    return row


async def _captured(
    session: AsyncSession,
    *,
    gateway: Gateway,
    order: Order,
    row: Payment,
    entity: dict[str, Any],
    source: str,
) -> None:
    forward(row, "captured")
    ref = f"captured:{row.razorpay_payment_id}"
    if not await ledger(
        session,
        kind="captured",
        reference=ref,
        amount=row.amount_paise,
        currency=row.currency,
        order_id=order.id,
        payment_id=row.razorpay_payment_id,
    ):
        return  # already entered by whichever path came first
    if entity.get("fee"):
        await ledger(
            session,
            kind="fee",
            reference=f"fee:{row.razorpay_payment_id}",
            amount=int(entity["fee"]),
            currency=row.currency,
            order_id=order.id,
            payment_id=row.razorpay_payment_id,
        )
    metrics.CAPTURED.labels(row.method).inc()
    metrics.CAPTURED_PAISE.inc(row.amount_paise)
    ctx = audit.SYSTEM
    audit_later(
        session,
        ctx,
        action="payments.captured",
        target_type="order",
        target_id=order.id,
        after={"payment": row.razorpay_payment_id, "amount_paise": row.amount_paise, "source": source},
    )
    other_capture = await session.scalar(
        select(func.count())
        .select_from(LedgerEntry)
        .where(LedgerEntry.order_id == order.id, LedgerEntry.kind == "captured", LedgerEntry.reference != ref)
    )
    if order.status == Status.pending_payment.value and not other_capture:
        await orders.mark_paid(session, order_id=order.id, reference=row.razorpay_payment_id)
        emit_result(session, order=order, row=row, topic="payment.succeeded")
        return
    if order.status in (Status.expired.value, Status.cancelled.value) and not other_capture:
        if await orders.revive_paid(session, order=order, reference=row.razorpay_payment_id):
            emit_result(session, order=order, row=row, topic="payment.succeeded")
            return
        await auto_refund(session, gateway=gateway, order=order, row=row, reason="unfulfillable")
        return
    # Paid already, or confirmed as cash on delivery: this money is not needed.
    why = "cash_on_delivery" if order.status == Status.confirmed.value else "duplicate"
    await auto_refund(session, gateway=gateway, order=order, row=row, reason=why)


async def auto_refund(
    session: AsyncSession, *, gateway: Gateway, order: Order, row: Payment, reason: str
) -> None:
    """Refund a captured payment in full; the idempotency key is the payment, so retries of
    this (after a crash, by the webhook and the reconciler) never refund twice. The customer is
    told by the `payment.auto_refunded` event (`notices.auto_refunded` sends the message)."""
    refund = await refunds.auto_row(session, order_id=order.id, payment=row, reason=reason)
    if refund.status == "pending" and refund.razorpay_refund_id is None:
        entity = await gateway.refund(
            row.razorpay_payment_id,
            amount=refund.amount_paise,
            key=refund.idempotency_key,
            notes=refunds.notes_for(refund),
        )
        refund = await refunds.settle(session, refund_id=refund.id, entity=entity)
    row.flag = f"auto_refunded_{reason}"[:40]
    metrics.AUTO_REFUNDS.labels(reason).inc()
    audit_later(
        session,
        audit.SYSTEM,
        action="payments.auto_refunded",
        target_type="order",
        target_id=order.id,
        after={
            "payment": row.razorpay_payment_id,
            "refund": refund.razorpay_refund_id,
            "refund_status": refund.status,
            "amount_paise": refund.amount_paise,
            "reason": reason,
        },
    )
    outbox.emit(
        session,
        topic="payment.auto_refunded",
        key=str(order.id),
        payload={
            "order_id": str(order.id),
            "order_number": order.number,
            "user_id": str(order.user_id),
            "reason": reason,
            "payment_id": row.razorpay_payment_id,
            "refund_id": str(refund.id),
            "amount_paise": refund.amount_paise,
        },
    )


def emit_result(session: AsyncSession, *, order: Order, row: Payment, topic: str) -> None:
    """`payment.succeeded` / `payment.failed` for the customer's real-time channel."""
    outbox.emit(
        session,
        topic=topic,
        key=str(order.id),
        payload={
            "order_id": str(order.id),
            "user_id": str(order.user_id),
            "payment_id": row.razorpay_payment_id,
            "method": row.method,
            "amount_paise": row.amount_paise,
            "status": row.status,
            "reason": row.failure_reason,
        },
    )
