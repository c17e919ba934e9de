"""HTTP routes of checkout and orders.

Placing an order requires `orders:create` and an Idempotency-Key (a retried tap must never buy
twice); other unsafe routes accept one. Customers see their own orders; staff the orders of the
stores in their scopes (`store:<code>`). Refunds move money: they need `orders:refund` and a
recent step-up (two-factor) verification, on `/refund` and on the generic transitions route.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from kirana.api import errors
from kirana.api.access.deps import CurrentUser, Require, StepUp, ensure_two_factor_for, require_step_up
from kirana.api.access.principal import Principal
from kirana.api.catalog import errors as catalog_errors
from kirana.api.contract.document import created, raising
from kirana.api.deps import SessionDep, SettingsDep
from kirana.api.idempotency.deps import IdempotentDep, IdempotentRequiredDep
from kirana.api.inputs import Int64, Text
from kirana.api.orders import placement
from kirana.api.orders import schemas as s
from kirana.api.orders import service as orders
from kirana.api.orders.states import Status
from kirana.api.settings import Settings

router = APIRouter(
    prefix="/v1",
    tags=["orders"],
    # no such order (or not visible), transitions not allowed, and the catalog's verdicts
    responses=raising(
        errors.NotFound,
        errors.InvalidState,
        catalog_errors.UnknownSku,
        catalog_errors.NotSellable,
        catalog_errors.OutOfStock,
        catalog_errors.PriceChanged,
    ),
)
Placer = Annotated[Principal, Require("orders:create")]
Limit = Annotated[Int64, Query(ge=1, le=100)]
Cursor = Annotated[Text | None, Query(max_length=200)]


def policy(settings: Settings) -> placement.Policy:
    return placement.policy_from(settings)


def _where(order: s.OrderRead) -> str:
    return placement.location(order.id)


@router.post("/checkout", status_code=201, response_model=s.OrderRead, responses=created())
async def checkout(
    request: Request, data: s.Checkout, settings: SettingsDep, principal: Placer, idem: IdempotentRequiredDep
) -> Response:
    """Buy the cart: re-price, reserve stock, create the order (pending_payment) in one transaction."""

    async def work(session: AsyncSession) -> s.OrderRead:
        return await placement.checkout_order(
            session,
            user_id=principal.user_id,
            policy=policy(settings),
            store_code=data.store_code,
            expected_total_paise=data.expected_total_paise,
            shipping_address=data.shipping_address.model_dump() if data.shipping_address else None,
            client=request.client.host if request.client else None,
        )

    return await idem.run(work, body=data, status_code=201, required=True, location=_where)


@router.post("/orders", status_code=201, response_model=s.OrderRead, responses=created())
async def place(
    request: Request,
    data: s.PlaceOrder,
    settings: SettingsDep,
    principal: Placer,
    idem: IdempotentRequiredDep,
) -> Response:
    """Buy these lines directly ("buy now"); same guarantees as checkout. With group commit on,
    `orders.edge` places well-formed requests in shared transactions before they get here;
    this route answers everything else (bad input, retries of a known key) and, with group
    commit off, every order."""
    claim, wanted = placement.admit(
        user_id=principal.user_id,
        key=idem.required_key(),
        data=data,
        policy=policy(settings),
        client=request.client.host if request.client else None,
    )

    async def work(session: AsyncSession) -> s.OrderRead:
        return await placement.place_order(session, wanted)

    return await idem.run(work, claim_for=claim, status_code=201, location=_where)


@router.get("/orders", response_model=s.OrderPage)
async def my_orders(
    session: SessionDep,
    principal: CurrentUser,
    status: Status | None = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> s.OrderPage:
    """The caller's order history, newest first."""
    return await orders.list_orders(
        session, principal=principal, mine=True, status=status, limit=limit, cursor=cursor
    )


@router.get("/staff/orders", response_model=s.OrderPage)
async def staff_orders(
    session: SessionDep,
    principal: Annotated[Principal, Require("orders:read_all")],
    status: Status | None = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> s.OrderPage:
    """Orders of the stores in the staff member's scopes, newest first."""
    return await orders.list_orders(
        session, principal=principal, mine=False, status=status, limit=limit, cursor=cursor
    )


@router.get("/orders/{order_id}", response_model=s.OrderRead)
async def get_order(order_id: uuid.UUID, session: SessionDep, principal: CurrentUser) -> s.OrderRead:
    """One order the caller may see (their own, or a store in their scopes)."""
    order = await orders.get_visible(session, order_id=order_id, principal=principal)
    return await orders.render(session, order=order)


@router.post("/orders/{order_id}/transitions", response_model=s.OrderRead)
async def transition(
    request: Request, order_id: uuid.UUID, data: s.Transition, principal: CurrentUser, idem: IdempotentDep
) -> Response:
    """Move the order on (paid, packed, shipped, ...), cancel or refund it, if allowed.
    A refund needs a recent step-up, as on `/refund`."""
    if data.status is Status.refunded and principal.can("orders:refund"):
        ensure_two_factor_for(principal, "orders:refund")  # as `Require` does on `/refund`
        await require_step_up(request, principal)  # callers without the right get 403 below

    async def work(session: AsyncSession) -> s.OrderRead:
        order = await orders.transition(
            session, order_id=order_id, target=data.status, principal=principal, reason=data.reason
        )
        return await orders.render(session, order=order)

    return await idem.run(work, body=data)


@router.post("/orders/{order_id}/refund", response_model=s.OrderRead)
async def refund(
    order_id: uuid.UUID,
    data: s.Refund,
    principal: Annotated[Principal, Require("orders:refund")],
    _stepped_up: Annotated[Principal, StepUp],  # after the permission: 403 before 401
    idem: IdempotentDep,
) -> Response:
    """Refund a delivered, or a paid then cancelled, order. Needs a two-factor step-up
    (POST /v1/auth/step-up) within `KIRANA_STEP_UP_TTL_S`; 401 `step-up-required` otherwise."""

    async def work(session: AsyncSession) -> s.OrderRead:
        order = await orders.transition(
            session, order_id=order_id, target=Status.refunded, principal=principal, reason=data.reason
        )
        return await orders.render(session, order=order)

    return await idem.run(work, body=data)
