"""Orders after placement: who may see them, reading and listing, the state machine.

Called by the orders router, sync pull and the reservation-expiry worker job (`orders.scheduled`).
Placing orders is `orders.placement`.

Stock taken by an unpaid order is released when it is cancelled or its reservation expires,
locking variants in id order as placement does. No HTTP, no commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api import cursors
from kirana.api.access.principal import Principal
from kirana.api.catalog.models import Variant
from kirana.api.db.base import utcnow
from kirana.api.errors import InvalidState, NotFound, PermissionDenied
from kirana.api.orders import metrics as order_metrics
from kirana.api.orders import placement, states
from kirana.api.orders import schemas as s
from kirana.api.orders.models import Order, OrderEvent, OrderLine
from kirana.api.orders.states import Actor, Status
from kirana.api.outbox import service as outbox
from kirana.api.sync import changes

# Permissions only staff hold (customers cancel their own orders without any of these).
STAFF_PERMISSIONS = ("orders:read_all", "orders:update_status", "orders:cancel_any", "orders:refund")


def store_scope(store_code: str) -> str:
    """The staff scope that covers a store's orders (see Principal.scopes)."""
    return f"store:{store_code}"


# -- reading ------------------------------------------------------------------------------


def is_staff_for(principal: Principal, order: Order) -> bool:
    """Whether the principal acts on this order as staff (an order permission, and its store in scope)."""
    return any(principal.can(p) for p in STAFF_PERMISSIONS) and principal.in_scope(
        store_scope(order.store_code)
    )


def can_see(principal: Principal, order: Order) -> bool:
    """Whether the principal may see the order: its owner, or staff for its store."""
    return order.user_id == principal.user_id or is_staff_for(principal, order)


async def get_visible(session: AsyncSession, *, order_id: uuid.UUID, principal: Principal) -> Order:
    """The order if the principal may see it; NotFound otherwise (whether or not it exists)."""
    order = await session.get(Order, order_id)
    if order is None or not can_see(principal, order):
        raise NotFound("no such order")  # the same answer whether it exists or is someone else's
    return order


async def render(session: AsyncSession, *, order: Order) -> s.OrderRead:
    """The order as the API shows it, with its lines (by SKU) and history."""
    lines = (
        await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.sku))
    ).all()
    history = (
        await session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
        )
    ).all()
    return placement.read_model(order, lines, history)


def encode_cursor(created_at: datetime, order_id: uuid.UUID) -> str:
    """The cursor after this order in the newest-first listing."""
    return cursors.encode([created_at.isoformat(), str(order_id)])


def decode_cursor(value: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) an `encode_cursor` cursor holds; InvalidInput (422) otherwise."""
    try:
        created, oid = cursors.decode(value)
        return datetime.fromisoformat(created), uuid.UUID(oid)
    except (ValueError, TypeError, AttributeError):
        raise cursors.malformed() from None


async def list_orders(
    session: AsyncSession,
    *,
    principal: Principal,
    mine: bool,
    status: Status | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> s.OrderPage:
    """The caller's own orders (`mine`), or every order in the staff member's store scopes."""
    stmt = select(Order)
    if mine:
        stmt = stmt.where(Order.user_id == principal.user_id)
    else:
        if not principal.can("orders:read_all"):
            raise PermissionDenied("requires orders:read_all")
        if principal.scopes:
            stores = sorted(x.removeprefix("store:") for x in principal.scopes if x.startswith("store:"))
            stmt = stmt.where(Order.store_code.in_(stores))
    if status is not None:
        stmt = stmt.where(Order.status == status.value)
    if cursor:
        created, oid = decode_cursor(cursor)
        stmt = stmt.where(tuple_(Order.created_at, Order.id) < (created, oid))
    rows = (
        await session.scalars(stmt.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit + 1))
    ).all()
    page = rows[:limit]
    return s.OrderPage(
        items=[
            s.OrderSummary(
                id=o.id,
                number=o.number,
                user_id=o.user_id,
                store_code=o.store_code,
                status=Status(o.status),
                item_count=o.item_count,
                total_paise=o.total_paise,
                created_at=o.created_at,
            )
            for o in page
        ],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None,
    )


# -- status changes -----------------------------------------------------------------------


async def _restock(session: AsyncSession, *, order_ids: Sequence[uuid.UUID]) -> None:
    """Put the stock of these orders back, locking variants in id order like placement does."""
    deltas: dict[uuid.UUID, int] = {}
    product_ids: set[uuid.UUID] = set()
    for variant_id, product_id, qty in await session.execute(
        select(OrderLine.variant_id, OrderLine.product_id, OrderLine.quantity).where(
            OrderLine.order_id.in_(order_ids)
        )
    ):
        deltas[variant_id] = deltas.get(variant_id, 0) + qty
        product_ids.add(product_id)
    if not deltas:
        return
    variants = (
        await session.scalars(
            select(Variant)
            .where(Variant.id.in_(list(deltas)))
            .order_by(Variant.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).all()
    for v in variants:
        v.stock += deltas[v.id]
    await session.flush()
    await changes.record_many(session, entity=changes.PRODUCT, entity_ids=sorted(product_ids))


async def return_stock(session: AsyncSession, *, order_id: uuid.UUID) -> None:
    """Put an order's goods back on the shelf (payments, when a refunded delivery came back)."""
    await _restock(session, order_ids=[order_id])


async def _apply(
    session: AsyncSession,
    *,
    order: Order,
    target: Status,
    actor: Actor,
    actor_id: uuid.UUID | None,
    reason: str | None,
) -> None:
    current = Status(order.status)
    if states.releases_stock(current, target):
        await _restock(session, order_ids=[order.id])
    now = utcnow()
    order.status = target.value
    if target is Status.paid:
        if order.paid_at is None:
            order_metrics.PLACED_TO_PAID.observe(max(0.0, (now - order.created_at).total_seconds()))
        order.paid_at = now
    elif current is Status.pending_payment and target in (Status.expired, Status.cancelled):
        order_metrics.CLOSED_UNPAID.labels(target.value).inc()
    if target in states.TERMINAL or target is Status.delivered or target is Status.cancelled:
        order.closed_at = now
    session.add(
        OrderEvent(
            order_id=order.id,
            from_status=current.value,
            to_status=target.value,
            actor_id=actor_id,
            actor_kind=actor.value,
            reason=reason,
        )
    )
    await session.flush()
    await changes.record(session, entity=changes.ORDER, entity_id=order.id, user_id=order.user_id)
    outbox.emit(
        session,
        topic="order.status_changed",
        key=str(order.id),
        payload={
            "order_id": str(order.id),
            "user_id": str(order.user_id),
            "store_code": order.store_code,
            "from": current.value,
            "to": target.value,
            "actor": actor.value,
            "actor_id": str(actor_id) if actor_id else None,
        },
    )


async def transition(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    target: Status,
    principal: Principal | None,
    reason: str | None = None,
) -> Order:
    """Move an order to `target` if the state machine and the caller's rights allow it.

    `principal` None means the system (payment webhooks, workers)."""
    order = await session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )
    if order is None or (principal is not None and not can_see(principal, order)):
        raise NotFound("no such order")
    current = Status(order.status)
    if principal is None:
        actor, actor_id, perms = Actor.system, None, frozenset[str]()
    else:
        owner_may = order.user_id == principal.user_id and target in states.CUSTOMER_MAY.get(
            current, frozenset()
        )
        actor = Actor.customer if owner_may or not is_staff_for(principal, order) else Actor.staff
        actor_id = principal.user_id
        perms = frozenset(p for p in states.STAFF_PERMISSION.values() if principal.can(p))
    decision = states.decide(
        current, target, actor=actor, permissions=perms, was_paid=order.paid_at is not None
    )
    if not decision.allowed:
        if decision.permission:
            raise PermissionDenied(decision.reason)
        raise InvalidState(decision.reason, extra={"status": current.value, "requested": target.value})
    await _apply(session, order=order, target=target, actor=actor, actor_id=actor_id, reason=reason)
    return order


def set_discount(order: Order, discount_paise: int) -> None:
    """The part of the total that something other than money pays (loyalty points held on the
    order); payments charge the rest (`Order.due_paise`). The caller holds the order's row lock
    and has checked that paying has not started."""
    if order.status != Status.pending_payment.value:
        raise InvalidState("a discount changes only while the order waits for payment")
    order.discount_paise = max(0, min(discount_paise, order.total_paise))


async def mark_paid(session: AsyncSession, *, order_id: uuid.UUID, reference: str | None = None) -> Order:
    """For the payments flow (webhook confirmed the payment): pending_payment -> paid."""
    return await transition(session, order_id=order_id, target=Status.paid, principal=None, reason=reference)


async def pending_payment_summary(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many orders wait for payment and when the oldest was placed (for the worker's gauges)."""
    row = (
        await session.execute(
            select(func.count(), func.min(Order.created_at)).where(
                Order.status == Status.pending_payment.value
            )
        )
    ).one()
    return int(row[0]), row[1]


async def expire_due(session: AsyncSession, *, limit: int = 200, now: datetime | None = None) -> int:
    """Expire unpaid orders whose reservation ran out and put their stock back.

    Concurrent workers skip each other's orders (SKIP LOCKED); an order being paid right now is
    locked by the payment and is looked at again on the next run."""
    due = (
        await session.scalars(
            select(Order)
            .where(
                Order.status == Status.pending_payment.value,
                Order.reservation_expires_at <= (now or utcnow()),
            )
            .order_by(Order.reservation_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for order in due:
        await _apply(
            session,
            order=order,
            target=Status.expired,
            actor=Actor.system,
            actor_id=None,
            reason="payment not received before the reservation expired",
        )
    return len(due)


async def revive_paid(session: AsyncSession, *, order: Order, reference: str) -> bool:
    """A payment was captured for an order that expired or was cancelled before it was ever
    paid: take its stock again and make it paid, if every line's stock is still there.

    Returns False (and changes nothing) when some stock is gone; the payments flow then
    refunds the payment. The caller holds the order's row lock."""
    current = Status(order.status)
    if current not in (Status.expired, Status.cancelled) or order.paid_at is not None:
        return False
    wanted: dict[uuid.UUID, int] = {}
    product_ids: set[uuid.UUID] = set()
    for variant_id, product_id, qty in await session.execute(
        select(OrderLine.variant_id, OrderLine.product_id, OrderLine.quantity).where(
            OrderLine.order_id == order.id
        )
    ):
        wanted[variant_id] = wanted.get(variant_id, 0) + qty
        product_ids.add(product_id)
    variants = (
        await session.scalars(
            select(Variant)
            .where(Variant.id.in_(list(wanted)))
            .order_by(Variant.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).all()
    if len(variants) != len(wanted) or any(v.stock < wanted[v.id] for v in variants):
        return False
    for v in variants:
        v.stock -= wanted[v.id]
    await session.flush()
    await changes.record_many(session, entity=changes.PRODUCT, entity_ids=sorted(product_ids))
    # Not a transition a person may make: only a captured payment brings an order back.
    await _apply(
        session,
        order=order,
        target=Status.paid,
        actor=Actor.system,
        actor_id=None,
        reason=f"{reference}: captured after the order was {current.value}; stock taken again",
    )
    order.closed_at = None
    return True
