"""Staff refunds of captured payments, full or partial, never above what is left to refund.

Called by the refund route (which holds `payments:refund`, a recent step-up and the
request's Idempotency-Key). Idempotent end to end: the shop's key replays the stored answer,
and each Razorpay refund carries `X-Refund-Idempotency` derived from that key and the payment,
so a retry after a crash between Razorpay's answer and the shop's commit gets the same refund
back instead of a second one. No HTTP, no commit.
"""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.access.principal import Principal
from kirana.api.audit import service as audit
from kirana.api.errors import InvalidInput, InvalidState, NotFound
from kirana.api.orders import service as orders
from kirana.api.orders.models import Order
from kirana.api.orders.states import Status
from kirana.api.payments import service as payments
from kirana.api.payments.gateway import Gateway, GatewayRefused, GatewayUnavailable
from kirana.api.payments.models import LedgerEntry, Payment

FULLY_REFUNDABLE_FROM = frozenset({Status.delivered.value, Status.cancelled.value})


class RefundTooLarge(InvalidInput):
    status, code, title = 422, "refund-exceeds-captured", "Refund exceeds what was captured"


def refund_key(idempotency_key: str, payment_id: str) -> str:
    """Razorpay's refund idempotency key for one payment's share of one staff request."""
    return "staff-" + hashlib.sha256(f"{idempotency_key}|{payment_id}".encode()).hexdigest()[:40]


async def _left_per_payment(session: AsyncSession, order_id: uuid.UUID) -> list[tuple[Payment, int]]:
    rows = (
        await session.execute(
            select(LedgerEntry.razorpay_payment_id, LedgerEntry.kind, func.sum(LedgerEntry.amount_paise))
            .where(LedgerEntry.order_id == order_id, LedgerEntry.kind.in_(["captured", "refunded"]))
            .group_by(LedgerEntry.razorpay_payment_id, LedgerEntry.kind)
        )
    ).all()
    net: dict[str, int] = {}
    for pid, kind, amount in rows:
        if pid is None:
            continue
        net[pid] = net.get(pid, 0) + (int(amount) if kind == "captured" else -int(amount))
    out = []
    for pid, left in sorted(net.items()):
        if left > 0:
            row = await session.scalar(select(Payment).where(Payment.razorpay_payment_id == pid))
            assert row is not None
            out.append((row, left))
    return out


async def refund(
    session: AsyncSession,
    *,
    gateway: Gateway,
    order_id: uuid.UUID,
    amount_paise: int | None,
    reason: str | None,
    idempotency_key: str,
    actor: audit.AuditContext,
    principal: Principal,
    retry_after_s: int,
) -> payments.Totals:
    order = await session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )
    if order is None or not principal.in_scope(orders.store_scope(order.store_code)):
        raise NotFound("no such order")
    left = await _left_per_payment(session, order.id)
    refundable = sum(n for _, n in left)
    if refundable == 0:
        raise InvalidState("nothing captured is left to refund on this order")
    amount = refundable if amount_paise is None else amount_paise
    if amount > refundable:
        raise RefundTooLarge(
            f"at most {refundable} paise can still be refunded", extra={"refundable_paise": refundable}
        )
    remaining = amount
    for row, available in left:
        part = min(available, remaining)
        if part <= 0:
            break
        try:
            rp = await gateway.refund(
                row.razorpay_payment_id,
                amount=part,
                key=refund_key(idempotency_key, row.razorpay_payment_id),
                notes={"shop_order_id": str(order.id), "reason": (reason or "")[:200]},
            )
        except GatewayUnavailable as exc:
            raise payments.unavailable(exc, retry_after_s=retry_after_s, operation="payment.refund") from exc
        except GatewayRefused as exc:
            raise InvalidState(f"Razorpay refused the refund: {exc}") from exc
        await payments.ledger(
            session,
            kind="refunded",
            reference=f"refund:{rp['id']}",
            amount=int(rp["amount"]),
            currency=row.currency,
            order_id=order.id,
            payment_id=row.razorpay_payment_id,
        )
        if part == available:
            payments.forward(row, "refunded")
        remaining -= part
        await audit.record(
            session,
            actor,
            action="payments.refunded",
            target_type="order",
            target_id=order.id,
            after={
                "payment": row.razorpay_payment_id,
                "refund": rp["id"],
                "amount_paise": part,
                "reason": reason,
            },
        )
    totals = await payments.totals(session, order_id=order.id)
    if totals.paid_paise == 0 and order.status in FULLY_REFUNDABLE_FROM:
        await orders.transition(
            session, order_id=order.id, target=Status.refunded, principal=None, reason=reason
        )
    return totals
