"""HTTP routes of the cart. Guests name their cart with the `X-Cart-Token` header (returned once
by POST /v1/carts); signed-in shoppers (`cart:use`) use their own cart. Every unsafe route
accepts an Idempotency-Key; every answer is the cart re-priced from the catalog."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from kirana.api import errors
from kirana.api.access.deps import CurrentUser, OptionalUser
from kirana.api.access.principal import Principal
from kirana.api.cart import schemas as s
from kirana.api.cart import service as carts
from kirana.api.catalog import errors as catalog_errors
from kirana.api.contract.document import raising
from kirana.api.deps import SessionDep, SettingsDep
from kirana.api.errors import InvalidState, PermissionDenied
from kirana.api.idempotency.deps import IdempotentDep
from kirana.api.inputs import Text
from kirana.api.settings import Settings

router = APIRouter(
    prefix="/v1",
    tags=["cart"],
    # no such cart token, a user without cart:use, line limits, and the catalog's verdicts
    responses=raising(
        errors.NotFound,
        errors.PermissionDenied,
        errors.InvalidState,
        catalog_errors.UnknownSku,
        catalog_errors.NotSellable,
        catalog_errors.OutOfStock,
    ),
)
CartToken = Annotated[Text | None, Header(alias="X-Cart-Token", min_length=16, max_length=200)]
SkuPath = Annotated[Text, Path(min_length=1, max_length=64, pattern=r"^[A-Z0-9][A-Z0-9\-_.]*$")]


def limits(settings: Settings) -> carts.Limits:
    return carts.Limits(max_line_quantity=settings.cart_max_line_quantity, max_lines=settings.cart_max_lines)


def _user_id(principal: Principal | None) -> uuid.UUID | None:
    if principal is None:
        return None
    if not principal.can("cart:use"):
        raise PermissionDenied("requires cart:use")
    return principal.user_id


@router.post("/carts", status_code=201, response_model=s.GuestCartCreated)
async def create_guest_cart(principal: OptionalUser, idem: IdempotentDep) -> Response:
    """Start a guest cart; keep the returned token (it is shown only here)."""
    if principal is not None:
        raise InvalidState("signed-in shoppers already have a cart at /v1/cart")

    async def work(session: AsyncSession) -> s.GuestCartCreated:
        cart, token = await carts.create_guest_cart(session)
        return s.GuestCartCreated(token=token, cart=await carts.view(session, cart=cart))

    return await idem.run(work, body={}, status_code=201)


@router.get("/cart", response_model=s.CartRead)
async def get_cart(
    session: SessionDep, settings: SettingsDep, principal: OptionalUser, token: CartToken = None
) -> s.CartRead:
    """The caller's cart, priced now, with availability per line."""
    cart = await carts.resolve(session, user_id=_user_id(principal), token=token, create=False)
    return await carts.view(session, cart=cart, limits=limits(settings))


async def _mutate(
    idem: Any,
    settings: Settings,
    principal: Principal | None,
    token: str | None,
    body: dict[str, Any],
    change: Any,
) -> Response:
    user_id = _user_id(principal)
    if user_id is None and token:
        idem = idem.with_owner(f"cart:{carts.hash_token(token)}")
    lim = limits(settings)

    async def work(session: AsyncSession) -> s.CartRead:
        cart = await carts.resolve(session, user_id=user_id, token=token, create=True, lock=True)
        assert cart is not None
        await change(session, cart, lim)
        return await carts.view(session, cart=cart, limits=lim)

    result: Response = await idem.run(work, body=body)
    return result


@router.post("/cart/lines", response_model=s.CartRead)
async def add_line(
    data: s.LineAdd,
    settings: SettingsDep,
    principal: OptionalUser,
    idem: IdempotentDep,
    token: CartToken = None,
) -> Response:
    """Add units of a SKU (adds to an existing line)."""

    async def change(session: AsyncSession, cart: Any, lim: carts.Limits) -> None:
        await carts.set_line(session, cart=cart, sku=data.sku, quantity=data.quantity, add=True, limits=lim)

    return await _mutate(idem, settings, principal, token, data.model_dump(), change)


@router.put("/cart/lines/{sku}", response_model=s.CartRead)
async def set_line(
    sku: SkuPath,
    data: s.LineSet,
    settings: SettingsDep,
    principal: OptionalUser,
    idem: IdempotentDep,
    token: CartToken = None,
) -> Response:
    """Set the quantity of a line (creating it if needed). Use DELETE to remove it."""

    async def change(session: AsyncSession, cart: Any, lim: carts.Limits) -> None:
        await carts.set_line(session, cart=cart, sku=sku, quantity=data.quantity, add=False, limits=lim)

    return await _mutate(idem, settings, principal, token, {"sku": sku, **data.model_dump()}, change)


@router.delete("/cart/lines/{sku}", response_model=s.CartRead)
async def remove_line(
    sku: SkuPath, settings: SettingsDep, principal: OptionalUser, idem: IdempotentDep, token: CartToken = None
) -> Response:
    """Remove a line from the cart."""

    async def change(session: AsyncSession, cart: Any, lim: carts.Limits) -> None:
        del lim
        await carts.remove_line(session, cart=cart, sku=sku)

    return await _mutate(idem, settings, principal, token, {"sku": sku}, change)


@router.post("/cart/merge", response_model=s.CartRead)
async def merge(
    data: s.MergeRequest, settings: SettingsDep, principal: CurrentUser, idem: IdempotentDep
) -> Response:
    """Fold a guest cart into the signed-in user's cart (login does this too)."""
    user_id = _user_id(principal)
    assert user_id is not None
    lim = limits(settings)

    async def work(session: AsyncSession) -> s.CartRead:
        cart = await carts.merge_guest_cart(
            session, guest_token=data.guest_token, user_id=user_id, limits=lim
        )
        return await carts.view(session, cart=cart, limits=lim)

    return await idem.run(work, body=data)
