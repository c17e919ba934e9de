"""Delivery operations: assign an order to an agent, follow the agent's positions and ETA,
and finish with the customer's one-time code or a failed attempt.

Called by the delivery router and by `delivery.flows` (the socket's channel check). Every change
emits an outbox event in the caller's transaction (`delivery.status_changed`,
`delivery.position`, `order.eta`); the workers' relay pushes committed ones to the channels
`delivery:<order id>`, `user:<customer>:orders` and `store:<code>:orders`. Order status moves
(out_for_delivery, delivered) go through `orders.transition` as the system, with the agent
named in the reason. Positions are limited per delivery in Redis (one per
`KIRANA_DELIVERY_POSITION_INTERVAL_S`), wrong codes lock the delivery's confirmation after five
tries (`ratelimit.Lockout`). No HTTP, no commit.

Just past 400 lines on purpose: assigning, starting, positions and finishing share the row lock
(`_mine`), the state check (`_active`) and the event helpers, and read as one lifecycle.
"""

from __future__ import annotations

import hmac
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.access import service as access
from kirana.api.access.principal import Principal
from kirana.api.access.runtime import principal_from
from kirana.api.audit import service as audit
from kirana.api.db.base import utcnow
from kirana.api.delivery import eta
from kirana.api.delivery import schemas as s
from kirana.api.delivery.models import ACTIVE, Delivery, DeliveryPosition
from kirana.api.errors import Conflict, InvalidInput, InvalidState, NotFound, RateLimited
from kirana.api.orders import service as orders
from kirana.api.orders.models import Order
from kirana.api.orders.states import Status as OrderStatus
from kirana.api.outbox import service as outbox
from kirana.api.payments import cod
from kirana.api.ratelimit import limiter

ASSIGNABLE = frozenset(
    {
        OrderStatus.paid,
        OrderStatus.confirmed,  # cash on delivery
        OrderStatus.packed,
        OrderStatus.shipped,
        OrderStatus.out_for_delivery,
    }
)
STARTABLE = frozenset({OrderStatus.packed, OrderStatus.shipped, OrderStatus.out_for_delivery})
CODE_LOCK = limiter.Lockout(name="delivery.code", free=5, base_s=300, cap_s=3600)
POSITION_KEY = "kirana:delivery:pos:"
MAX_FIX_AGE = timedelta(minutes=10)
MAX_CLOCK_SKEW = timedelta(seconds=30)
TRAIL = 50


@dataclass(frozen=True)
class Tuning:
    """The settings the service needs (`KIRANA_DELIVERY_*`)."""

    position_interval_s: float = 0.9
    speed_kmh: float = 18.0


def channel(order_id: uuid.UUID | str) -> str:
    """The real-time channel that carries one order's delivery (positions, status, ETA)."""
    return f"delivery:{order_id}"


def _event(session: AsyncSession, d: Delivery, topic: str, **data: Any) -> None:
    payload = {"order_id": str(d.order_id), "delivery_id": str(d.id), "user_id": str(d.user_id)}
    payload |= {"store_code": d.store_code, "agent_id": str(d.agent_id), **data}
    outbox.emit(session, topic=topic, key=str(d.order_id), payload=payload)


def _status_event(session: AsyncSession, d: Delivery, **data: Any) -> None:
    _event(session, d, "delivery.status_changed", status=d.status, **data)


# -- reading --------------------------------------------------------------------------------


def is_staff_for(principal: Principal, d: Delivery) -> bool:
    """Whether the principal is staff who may see every delivery of the delivery's store."""
    return principal.can("deliveries:read_all") and principal.in_scope(orders.store_scope(d.store_code))


def refusal(principal: Principal, d: Delivery | None) -> str | None:
    """None when the principal may follow this delivery (its customer, its agent, staff for its
    store), else why not."""
    if d is None:
        return "no delivery for this order"
    if principal.user_id in (d.user_id, d.agent_id) or is_staff_for(principal, d):
        return None
    return "this delivery is not yours to follow"


async def latest_for_order(session: AsyncSession, *, order_id: uuid.UUID) -> Delivery | None:
    """The order's active delivery, else its most recent one."""
    stmt = select(Delivery).where(Delivery.order_id == order_id)
    rows = (await session.scalars(stmt.order_by(Delivery.created_at.desc()).limit(10))).all()
    active = [d for d in rows if d.status in ACTIVE]
    return active[0] if active else (rows[0] if rows else None)


async def get_for_order(
    session: AsyncSession, *, order_id: uuid.UUID, principal: Principal
) -> s.DeliveryRead:
    """The order's delivery with its recent trail, for its customer, agent or staff."""
    d = await latest_for_order(session, order_id=order_id)
    if d is None or refusal(principal, d) is not None:
        raise NotFound("no delivery for this order")
    return await render(session, d=d, viewer=principal, trail=True)


async def list_assigned(session: AsyncSession, *, principal: Principal) -> s.DeliveryPage:
    """The agent's active deliveries, oldest assignment first."""
    stmt = select(Delivery).where(Delivery.agent_id == principal.user_id, Delivery.status.in_(ACTIVE))
    rows = (await session.scalars(stmt.order_by(Delivery.created_at))).all()
    return s.DeliveryPage(items=[await render(session, d=d, viewer=principal) for d in rows])


async def render(
    session: AsyncSession, *, d: Delivery, viewer: Principal, trail: bool = False
) -> s.DeliveryRead:
    """The delivery as `viewer` may see it, with its latest positions when `trail` is set."""
    positions: list[s.PositionRead] = []
    if trail:
        stmt = select(DeliveryPosition).where(DeliveryPosition.delivery_id == d.id)
        rows = (await session.scalars(stmt.order_by(DeliveryPosition.id.desc()).limit(TRAIL))).all()
        positions = [_position(p) for p in reversed(rows)]
    latest = None
    if d.last_lat is not None and d.last_lng is not None and d.last_at is not None:
        latest = s.PositionRead(lat=d.last_lat, lng=d.last_lng, accuracy_m=None, recorded_at=d.last_at)
    dest = None
    if d.dest_lat is not None and d.dest_lng is not None:
        dest = s.Point(lat=d.dest_lat, lng=d.dest_lng)
    return s.DeliveryRead(
        id=d.id,
        order_id=d.order_id,
        agent_id=d.agent_id,
        store_code=d.store_code,
        status=s.Status(d.status),
        destination=dest,
        position=latest,
        eta_at=d.eta_at,
        started_at=d.started_at,
        finished_at=d.finished_at,
        failure_reason=s.FailureReason(d.failure_reason) if d.failure_reason else None,
        code=d.code if viewer.user_id == d.user_id and d.status in ACTIVE else None,
        channel=channel(d.order_id),
        trail=positions,
    )


def _position(p: DeliveryPosition) -> s.PositionRead:
    return s.PositionRead(lat=p.lat, lng=p.lng, accuracy_m=p.accuracy_m, recorded_at=p.recorded_at)


# -- staff: assignment ----------------------------------------------------------------------


async def _agent(session: AsyncSession, agent_id: uuid.UUID, store_code: str) -> None:
    snap = await access.load_snapshot(session, user_id=agent_id, ttl_s=0, recent_revoked_s=0)
    if snap is None:
        raise InvalidInput("no such delivery agent", extra={"agent_id": str(agent_id)})
    agent = principal_from(snap, None)
    if not (agent.can("deliveries:track") and agent.can("deliveries:complete")):
        raise InvalidInput("this user is not a delivery agent", extra={"agent_id": str(agent_id)})
    if not agent.in_scope(orders.store_scope(store_code)):
        raise InvalidInput("this agent does not serve the order's store", extra={"store_code": store_code})


async def assign(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    agent_id: uuid.UUID,
    destination: s.Point | None,
    principal: Principal,
) -> Delivery:
    """Give the order to an agent; an active delivery of it (another agent's) is cancelled."""
    order = await session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None or not principal.in_scope(orders.store_scope(order.store_code)):
        raise NotFound("no such order")
    if OrderStatus(order.status) not in ASSIGNABLE:
        raise InvalidState(
            f"an order that is {order.status} cannot be delivered", extra={"status": order.status}
        )
    await _agent(session, agent_id, order.store_code)
    now = utcnow()
    current = await latest_for_order(session, order_id=order_id)
    if current is not None and current.status in ACTIVE:
        if current.agent_id == agent_id:
            raise Conflict(
                "the order is already assigned to this agent", extra={"delivery_id": str(current.id)}
            )
        current.status, current.finished_at, current.code = "cancelled", now, None
        _status_event(session, current, reason="reassigned")
        await session.flush()
    d = Delivery(
        order_id=order.id,
        user_id=order.user_id,
        store_code=order.store_code,
        agent_id=agent_id,
        assigned_by=principal.user_id,
        status="assigned",
        code=f"{secrets.randbelow(10_000):04d}",
        dest_lat=destination.lat if destination else None,
        dest_lng=destination.lng if destination else None,
    )
    session.add(d)
    await session.flush()
    _status_event(session, d)
    return d


# -- the agent ------------------------------------------------------------------------------


async def _mine(session: AsyncSession, delivery_id: uuid.UUID, principal: Principal) -> Delivery:
    d = await session.scalar(
        select(Delivery)
        .where(Delivery.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if d is None or d.agent_id != principal.user_id:
        raise NotFound("no such delivery")
    return d


def _active(d: Delivery, *allowed: str) -> None:
    if d.status not in allowed:
        raise InvalidState(f"this delivery is {d.status}", extra={"status": d.status})


async def start(session: AsyncSession, *, delivery_id: uuid.UUID, principal: Principal) -> Delivery:
    """The agent sets off: the delivery is en route and the order out for delivery."""
    d = await _mine(session, delivery_id, principal)
    _active(d, "assigned")
    order = await session.get(Order, d.order_id)
    assert order is not None
    status = OrderStatus(order.status)
    if status not in STARTABLE:
        raise InvalidState(f"the order is {status.value}: not packed yet", extra={"status": status.value})
    why = f"picked up by delivery agent {principal.user_id}"
    if status is OrderStatus.packed:
        await orders.transition(
            session, order_id=order.id, target=OrderStatus.shipped, principal=None, reason=why
        )
    if status is not OrderStatus.out_for_delivery:
        await orders.transition(
            session, order_id=order.id, target=OrderStatus.out_for_delivery, principal=None, reason=why
        )
    d.status, d.started_at = "en_route", utcnow()
    _status_event(session, d)
    return d


async def _admit_position(redis: Redis, delivery_id: uuid.UUID, interval_s: float) -> None:
    """At most one position per `interval_s` per delivery, whichever replica receives it."""
    ms = max(1, int(interval_s * 1000))
    if not await redis.set(f"{POSITION_KEY}{delivery_id}", "1", nx=True, px=ms):
        wait_ms = max(1, int(await redis.pttl(f"{POSITION_KEY}{delivery_id}")))
        raise RateLimited(
            f"at most one position every {interval_s:g} s",
            headers={"Retry-After": str(math.ceil(wait_ms / 1000))},
        )


async def record_position(
    session: AsyncSession,
    redis: Redis,
    *,
    delivery_id: uuid.UUID,
    principal: Principal,
    data: s.PositionCreate,
    tuning: Tuning,
) -> Delivery:
    """Store one fix, move the delivery's latest position and ETA, and announce them."""
    d = await _mine(session, delivery_id, principal)
    _active(d, *ACTIVE)
    await _admit_position(redis, d.id, tuning.position_interval_s)
    now = utcnow()
    at = data.recorded_at or now
    if at.tzinfo is None:
        raise InvalidInput("recorded_at needs a time zone", extra={"field": "recorded_at"})
    if at > now + MAX_CLOCK_SKEW or at < now - MAX_FIX_AGE:
        raise InvalidInput("recorded_at is too far from now", extra={"field": "recorded_at"})
    prev = _latest(d)
    if not eta.believable(prev=prev, lat=data.lat, lng=data.lng, at=at):
        raise InvalidInput("this position is implausibly far from the previous one", extra={"field": "lat"})
    session.add(
        DeliveryPosition(
            delivery_id=d.id, lat=data.lat, lng=data.lng, accuracy_m=data.accuracy_m, recorded_at=at
        )
    )
    if prev is None or at >= prev[2]:  # a late, older fix joins the trail only
        d.last_lat, d.last_lng, d.last_at = data.lat, data.lng, at
    estimate = None
    here = _latest(d)
    if d.status == "en_route" and here is not None and d.dest_lat is not None and d.dest_lng is not None:
        estimate = eta.eta(
            lat=here[0],
            lng=here[1],
            dest_lat=d.dest_lat,
            dest_lng=d.dest_lng,
            at=now,
            speed_kmh=tuning.speed_kmh,
        )
        if eta.worth_announcing(d.eta_at, estimate):
            d.eta_at = estimate
            _event(session, d, "order.eta", eta_at=estimate.isoformat(), eta_s=_seconds(estimate, now))
    _event(
        session,
        d,
        "delivery.position",
        lat=data.lat,
        lng=data.lng,
        accuracy_m=data.accuracy_m,
        at=at.isoformat(),
        eta_at=estimate.isoformat() if estimate else None,
    )
    await session.flush()
    return d


def _latest(d: Delivery) -> tuple[float, float, datetime] | None:
    if d.last_lat is None or d.last_lng is None or d.last_at is None:
        return None
    return d.last_lat, d.last_lng, d.last_at


def _seconds(when: datetime, now: datetime) -> int:
    return max(0, round((when - now).total_seconds()))


async def confirm(
    session: AsyncSession,
    redis: Redis,
    *,
    delivery_id: uuid.UUID,
    principal: Principal,
    code: str,
    cash_paise: int | None = None,
    actor: audit.AuditContext = audit.SYSTEM,
) -> Delivery:
    """Proof of delivery: the customer's one-time code; the order becomes delivered. For a
    cash-on-delivery order the agent records the cash taken (`cash_paise`, the whole amount
    due) in the same transaction, through payments' own flow (ledger, audit, event)."""
    d = await _mine(session, delivery_id, principal)
    _active(d, "en_route")
    due = await cod.due_at_door(session, order_id=d.order_id)
    if due is not None and cash_paise is None:
        raise InvalidInput(
            f"this order is paid on delivery: record the cash taken ({due} paise) as cash_paise",
            extra={"field": "cash_paise", "amount_paise": due},
        )
    if due is None and cash_paise is not None:
        raise InvalidInput(
            "this order is not paid on delivery: no cash is due", extra={"field": "cash_paise"}
        )
    subject = str(d.id)
    await limiter.ensure_unlocked(redis, CODE_LOCK, subject)
    if d.code is None or not hmac.compare_digest(d.code.encode(), code.encode()):
        locked_ms = await limiter.record_failure(redis, CODE_LOCK, subject)
        extra = {"locked_for_s": math.ceil(locked_ms / 1000)} if locked_ms else {}
        raise InvalidInput("wrong delivery code", extra={"field": "code", **extra})
    await limiter.record_success(redis, CODE_LOCK, subject)
    await orders.transition(
        session,
        order_id=d.order_id,
        target=OrderStatus.delivered,
        principal=None,
        reason=f"delivered by agent {principal.user_id}; code confirmed",
    )
    if cash_paise is not None:  # a wrong amount (422) rolls the delivery back with it
        await cod.collect(
            session,
            order_id=d.order_id,
            amount_paise=cash_paise,
            principal=principal,
            actor=actor.as_actor(principal.user_id),
        )
    d.status, d.finished_at, d.code = "delivered", utcnow(), None
    _status_event(session, d)
    return d


async def fail(
    session: AsyncSession,
    *,
    delivery_id: uuid.UUID,
    principal: Principal,
    reason: s.FailureReason,
    note: str,
) -> Delivery:
    """A failed attempt: the delivery ends; staff may assign the order again."""
    d = await _mine(session, delivery_id, principal)
    _active(d, *ACTIVE)
    d.status, d.finished_at, d.code = "failed", utcnow(), None
    d.failure_reason, d.note = reason.value, note or None
    _status_event(session, d, reason=reason.value)
    return d
