"""Cash on delivery: an order confirmed without payment, under a limit and where it is offered,
and settled by the cash taken at the door.

`confirm` (the customer, on a `pending_payment` order with a delivery address) checks
`KIRANA_PAYMENTS_COD_LIMIT_PAISE` and `KIRANA_PAYMENTS_COD_PINCODES`, then moves the order to
`confirmed`, which holds its stock without a reservation timer; asked again it answers the same.
`collect` (staff now, the delivery agent once delivery tracking exists) records the cash: one
`cod_collected` ledger row for the order's total, the order `delivered` if it was out for
delivery. Both are audited and emit outbox events. Called by the payment routes. No HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.access.principal import Principal
from kirana.api.audit import service as audit
from kirana.api.db.base import utcnow
from kirana.api.errors import InvalidInput, InvalidState, NotFound
from kirana.api.orders import service as orders
from kirana.api.orders.models import Order
from kirana.api.orders.states import Status
from kirana.api.outbox import service as outbox
from kirana.api.payments import metrics
from kirana.api.payments import service as payments
from kirana.api.payments.models import CashOnDelivery

COLLECTABLE_FROM = frozenset({Status.out_for_delivery.value, Status.delivered.value})


class CodUnavailable(InvalidState):
    status, code, title = 409, "cod-unavailable", "Cash on delivery not offered"


class CodLimitExceeded(InvalidInput):
    status, code, title = 422, "cod-limit-exceeded", "Above the cash-on-delivery limit"


class CodAmountMismatch(InvalidInput):
    status, code, title = 422, "cod-amount-mismatch", "Cash collected differs from the order"


@dataclass(frozen=True)
class CodPolicy:
    enabled: bool
    limit_paise: int
    pincodes: tuple[str, ...]  # pincodes or prefixes ("5600" for all of 5600xx); empty: everywhere

    def offered_at(self, pincode: str) -> bool:
        return not self.pincodes or any(pincode.startswith(p) for p in self.pincodes)


def policy_of(*, enabled: bool, limit_paise: int, pincodes: Sequence[str]) -> CodPolicy:
    return CodPolicy(enabled, limit_paise, tuple(p.strip() for p in pincodes if p.strip()))


def _refuse(reason: str, message: str, **extra: object) -> CodUnavailable:
    metrics.COD.labels("refused").inc()
    return CodUnavailable(message, extra={"reason": reason, **extra})


async def _locked(session: AsyncSession, order_id: uuid.UUID) -> Order | None:
    return await session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )


async def confirm(
    session: AsyncSession, *, order_id: uuid.UUID, user_id: uuid.UUID, policy: CodPolicy
) -> tuple[Order, CashOnDelivery]:
    """Confirm the caller's unpaid order as cash on delivery, or say why it cannot be."""
    order = await _locked(session, order_id)
    if order is None or order.user_id != user_id:
        raise NotFound("no such order")
    existing = await session.get(CashOnDelivery, order.id)
    if existing is not None:
        return order, existing
    if order.status != Status.pending_payment.value:
        raise InvalidState(
            f"an order that is {order.status} cannot be paid on delivery", extra={"status": order.status}
        )
    if not policy.enabled:
        raise _refuse("disabled", "this shop does not take cash on delivery")
    pincode = str((order.shipping_address or {}).get("pincode") or "")
    if not pincode:
        raise _refuse("no_address", "cash on delivery needs a delivery address with a pincode")
    if not policy.offered_at(pincode):
        raise _refuse("pincode", f"cash on delivery is not offered at {pincode}", pincode=pincode)
    if order.due_paise > policy.limit_paise:
        metrics.COD.labels("refused").inc()
        raise CodLimitExceeded(
            f"cash on delivery takes orders up to {policy.limit_paise} paise",
            extra={"limit_paise": policy.limit_paise},
        )
    row = CashOnDelivery(
        order_id=order.id, amount_paise=order.due_paise, currency=order.currency, pincode=pincode
    )
    session.add(row)
    await session.flush()
    await orders.transition(
        session, order_id=order.id, target=Status.confirmed, principal=None, reason="cash on delivery"
    )
    order.reservation_expires_at = None  # confirmed: held until delivered or cancelled
    await audit.record(
        session,
        audit.AuditContext(actor_id=user_id),
        action="payments.cod_confirmed",
        target_type="order",
        target_id=order.id,
        after={"amount_paise": order.due_paise, "pincode": pincode},
    )
    metrics.COD.labels("confirmed").inc()
    return order, row


async def due_at_door(session: AsyncSession, *, order_id: uuid.UUID) -> int | None:
    """What is still to be taken in cash at the door of this order: None when it is not paid on
    delivery or its cash is already recorded."""
    row = await session.get(CashOnDelivery, order_id)
    return None if row is None or row.collected_at is not None else row.amount_paise


async def collect(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    amount_paise: int,
    principal: Principal,
    actor: audit.AuditContext,
) -> tuple[Order, CashOnDelivery]:
    """Record the cash taken at the door for a cash-on-delivery order (once)."""
    order = await _locked(session, order_id)
    if order is None or not principal.in_scope(orders.store_scope(order.store_code)):
        raise NotFound("no such order")
    row = await session.get(CashOnDelivery, order.id, with_for_update=True)
    if row is None:
        raise InvalidState("this order is not paid on delivery")
    if row.collected_at is not None:
        return order, row
    if order.status not in COLLECTABLE_FROM:
        raise InvalidState(
            f"cash is collected at the door; this order is {order.status}", extra={"status": order.status}
        )
    if amount_paise != row.amount_paise:
        raise CodAmountMismatch(
            f"the order is {row.amount_paise} paise; record the whole amount",
            extra={"amount_paise": row.amount_paise},
        )
    await payments.ledger(
        session,
        kind="cod_collected",
        reference=f"cod:{order.id}",
        amount=row.amount_paise,
        currency=row.currency,
        order_id=order.id,
        payment_id=None,
    )
    row.collected_at, row.collected_by = utcnow(), actor.actor_id
    if order.status == Status.out_for_delivery.value:
        await orders.transition(
            session, order_id=order.id, target=Status.delivered, principal=principal, reason="cash collected"
        )
    await audit.record(
        session,
        actor,
        action="payments.cod_collected",
        target_type="order",
        target_id=order.id,
        after={"amount_paise": row.amount_paise},
    )
    outbox.emit(
        session,
        topic="payment.succeeded",
        key=str(order.id),
        payload={
            "order_id": str(order.id),
            "user_id": str(order.user_id),
            "payment_id": None,
            "method": "cod",
            "amount_paise": row.amount_paise,
            "status": "collected",
            "reason": None,
        },
    )
    metrics.COD.labels("collected").inc()
    return order, row
