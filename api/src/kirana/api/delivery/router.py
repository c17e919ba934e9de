"""HTTP routes of delivery tracking.

Staff with `deliveries:assign` give an order to an agent; agents (`delivery_agent`: holding
`deliveries:track` and `deliveries:complete`) list their deliveries, set off, send positions and
finish with the customer's code or a failed attempt; the order's customer, its agent and staff
with `deliveries:read_all` read the delivery (the customer also sees the code). Live updates
arrive on the socket channel `delivery:<order id>` (docs/delivery.md).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Response

from kirana.api import errors
from kirana.api.access.deps import CurrentUser, Require
from kirana.api.access.principal import Principal
from kirana.api.audit.deps import AuditCtx
from kirana.api.contract.document import created, raising
from kirana.api.delivery import schemas as s
from kirana.api.delivery import service as delivery
from kirana.api.deps import RedisDep, SessionDep, SettingsDep
from kirana.api.payments import cod
from kirana.api.settings import Settings

router = APIRouter(prefix="/v1", tags=["delivery"])
Assigner = Annotated[Principal, Require("deliveries:assign")]
Tracker = Annotated[Principal, Require("deliveries:track")]
Finisher = Annotated[Principal, Require("deliveries:complete")]


def tuning(settings: Settings) -> delivery.Tuning:
    return delivery.Tuning(
        position_interval_s=settings.delivery_position_interval_s, speed_kmh=settings.delivery_speed_kmh
    )


@router.post(
    "/staff/orders/{order_id}/delivery", status_code=201, response_model=s.DeliveryRead, responses=created()
)
async def assign(
    order_id: uuid.UUID,
    data: s.AssignmentCreate,
    response: Response,
    session: SessionDep,
    principal: Assigner,
) -> s.DeliveryRead:
    """Assign the order to a delivery agent of its store (another agent's assignment ends)."""
    response.headers["Location"] = f"/v1/orders/{order_id}/delivery"
    d = await delivery.assign(
        session, order_id=order_id, agent_id=data.agent_id, destination=data.destination, principal=principal
    )
    return await delivery.render(session, d=d, viewer=principal)


@router.get("/orders/{order_id}/delivery", response_model=s.DeliveryRead)
async def order_delivery(order_id: uuid.UUID, session: SessionDep, principal: CurrentUser) -> s.DeliveryRead:
    """The order's delivery: agent, latest position, recent trail, ETA (and, for its customer,
    the code to read out to the agent)."""
    return await delivery.get_for_order(session, order_id=order_id, principal=principal)


@router.get("/deliveries", response_model=s.DeliveryPage)
async def my_deliveries(session: SessionDep, principal: Tracker) -> s.DeliveryPage:
    """The agent's active deliveries."""
    return await delivery.list_assigned(session, principal=principal)


@router.post("/deliveries/{delivery_id}/start", response_model=s.DeliveryRead)
async def start(delivery_id: uuid.UUID, session: SessionDep, principal: Tracker) -> s.DeliveryRead:
    """Set off with the order: it is now out for delivery."""
    d = await delivery.start(session, delivery_id=delivery_id, principal=principal)
    return await delivery.render(session, d=d, viewer=principal)


@router.post("/deliveries/{delivery_id}/positions", status_code=201, response_model=s.DeliveryRead)
async def position(
    delivery_id: uuid.UUID,
    data: s.PositionCreate,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    principal: Tracker,
) -> s.DeliveryRead:
    """One GPS fix; 429 when sent faster than `KIRANA_DELIVERY_POSITION_INTERVAL_S`."""
    d = await delivery.record_position(
        session, redis, delivery_id=delivery_id, principal=principal, data=data, tuning=tuning(settings)
    )
    return await delivery.render(session, d=d, viewer=principal)


@router.post(
    "/deliveries/{delivery_id}/deliver",
    response_model=s.DeliveryRead,
    # a wrong code or cash amount, a delivery not under way, the code locked after five misses
    responses=raising(errors.InvalidInput, cod.CodAmountMismatch, errors.InvalidState, errors.RateLimited),
)
async def deliver(
    delivery_id: uuid.UUID,
    data: s.Confirm,
    session: SessionDep,
    redis: RedisDep,
    principal: Finisher,
    ctx: AuditCtx,
) -> s.DeliveryRead:
    """Proof of delivery with the customer's one-time code; five wrong codes lock it a while. For
    a cash-on-delivery order, `cash_paise` records the cash taken at the door (the whole amount
    due) in the same step."""
    d = await delivery.confirm(
        session,
        redis,
        delivery_id=delivery_id,
        principal=principal,
        code=data.code,
        cash_paise=data.cash_paise,
        actor=ctx,
    )
    return await delivery.render(session, d=d, viewer=principal)


@router.post("/deliveries/{delivery_id}/fail", response_model=s.DeliveryRead)
async def fail(
    delivery_id: uuid.UUID, data: s.Failure, session: SessionDep, principal: Finisher
) -> s.DeliveryRead:
    """A failed attempt (customer unavailable, address not found, ...); staff may reassign."""
    d = await delivery.fail(
        session, delivery_id=delivery_id, principal=principal, reason=data.reason, note=data.note
    )
    return await delivery.render(session, d=d, viewer=principal)
