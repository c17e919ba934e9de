"""Carts: find or create, add/update/remove lines, re-price for every read, merge at login.

Called by the cart router, checkout (`kirana.api.orders.placement.checkout_order`), sync push, and the
accounts login flow (`merge_guest_cart`). Client prices are never accepted: every read prices
lines from the catalog and reports availability. No HTTP, no commit.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.cart import schemas as s
from kirana.api.cart.models import ACTIVE, CONVERTED, MERGED, Cart, CartLine
from kirana.api.catalog import pricing
from kirana.api.catalog.errors import NotSellable, OutOfStock, UnknownSku
from kirana.api.catalog.models import Product, Variant
from kirana.api.db.base import utcnow
from kirana.api.errors import InvalidInput, NotFound
from kirana.api.sync import changes


@dataclass(frozen=True)
class Limits:
    max_line_quantity: int = 50
    max_lines: int = 100


DEFAULT_LIMITS = Limits()


def hash_token(token: str) -> str:
    """The stored form of a guest cart token (the token itself is never stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh guest cart token (256 random bits)."""
    return secrets.token_urlsafe(32)


async def create_guest_cart(session: AsyncSession) -> tuple[Cart, str]:
    """A new anonymous cart and the token that opens it (shown to the client once)."""
    token = new_token()
    cart = Cart(token_hash=hash_token(token), status=ACTIVE)
    session.add(cart)
    await session.flush()
    return cart, token


async def user_cart(
    session: AsyncSession, *, user_id: uuid.UUID, create: bool, lock: bool = False
) -> Cart | None:
    """The user's active cart; created on first use when `create`."""
    stmt = select(Cart).where(Cart.user_id == user_id, Cart.status == ACTIVE)
    if lock:
        stmt = stmt.with_for_update()
    cart = await session.scalar(stmt)
    if cart is not None or not create:
        return cart
    await session.execute(
        insert(Cart)
        .values(id=uuid.uuid4(), user_id=user_id, status=ACTIVE)
        .on_conflict_do_nothing(
            # The index's own predicate as literal SQL: a bound `status = $n` stops matching the
            # partial index once PostgreSQL switches the prepared statement to a generic plan.
            index_elements=["user_id"],
            index_where=text("status = 'active' AND user_id IS NOT NULL"),
        )
    )
    cart = await session.scalar(stmt.execution_options(populate_existing=True))
    assert cart is not None
    return cart


async def guest_cart(session: AsyncSession, *, token: str, lock: bool = False) -> Cart:
    """The active guest cart this token opens (`lock`: FOR UPDATE); NotFound otherwise."""
    stmt = select(Cart).where(
        Cart.token_hash == hash_token(token), Cart.status == ACTIVE, Cart.user_id.is_(None)
    )
    if lock:
        stmt = stmt.with_for_update()
    cart = await session.scalar(stmt)
    if cart is None:
        raise NotFound("no active guest cart for this token (it may have been merged at sign-in)")
    return cart


async def resolve(
    session: AsyncSession, *, user_id: uuid.UUID | None, token: str | None, create: bool, lock: bool = False
) -> Cart | None:
    """The caller's cart: the signed-in user's, else the guest cart named by the token."""
    if user_id is not None:
        return await user_cart(session, user_id=user_id, create=create, lock=lock)
    if token:
        return await guest_cart(session, token=token, lock=lock)
    raise InvalidInput("send the guest cart's X-Cart-Token header, or sign in")


async def _touch(session: AsyncSession, cart: Cart) -> None:
    cart.updated_at = utcnow()
    await session.flush()
    if cart.user_id is not None:
        await changes.record(session, entity=changes.CART, entity_id=cart.id, user_id=cart.user_id)


async def _sellable_variant(session: AsyncSession, sku: str) -> tuple[Variant, bool]:
    row = (
        await session.execute(
            select(Variant, Product.is_published)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.sku == sku)
        )
    ).first()
    if row is None:
        raise UnknownSku(f"no product has SKU {sku!r}", extra={"skus": [sku]})
    variant, published = row
    return variant, bool(published and variant.is_active)


def _check_quantity(quantity: int, limits: Limits) -> None:
    if quantity <= 0:
        raise InvalidInput("quantity must be at least 1")
    if quantity > limits.max_line_quantity:
        raise InvalidInput(
            f"at most {limits.max_line_quantity} of one item per order",
            extra={"max_quantity": limits.max_line_quantity},
        )


async def set_line(
    session: AsyncSession, *, cart: Cart, sku: str, quantity: int, add: bool, limits: Limits = DEFAULT_LIMITS
) -> None:
    """Add `quantity` to the line (add=True) or set it to `quantity` (add=False). Cart must be locked."""
    _check_quantity(quantity, limits)
    variant, sellable = await _sellable_variant(session, sku)
    if not sellable:
        raise NotSellable(f"{sku} is not for sale at the moment", extra={"skus": [sku]})
    line = await session.scalar(
        select(CartLine).where(CartLine.cart_id == cart.id, CartLine.variant_id == variant.id)
    )
    new_qty = (line.quantity if line and add else 0) + quantity
    _check_quantity(new_qty, limits)
    if new_qty > variant.stock:
        raise OutOfStock(
            f"only {variant.stock} of {sku} available",
            extra={"lines": [{"sku": sku, "requested": new_qty, "available": variant.stock}]},
        )
    if line is None:
        count = await session.scalar(select(func.count()).where(CartLine.cart_id == cart.id)) or 0
        if count >= limits.max_lines:
            raise InvalidInput(f"a cart holds at most {limits.max_lines} different items")
        session.add(
            CartLine(
                cart_id=cart.id,
                variant_id=variant.id,
                quantity=new_qty,
                price_at_add_paise=variant.price_paise,
            )
        )
    else:
        line.quantity = new_qty
        line.price_at_add_paise = variant.price_paise
        line.updated_at = utcnow()
    await session.flush()
    await _touch(session, cart)


async def remove_line(session: AsyncSession, *, cart: Cart, sku: str) -> None:
    """Remove the SKU from the cart; NotFound when it is not in it."""
    line = await session.scalar(
        select(CartLine)
        .join(Variant, Variant.id == CartLine.variant_id)
        .where(CartLine.cart_id == cart.id, Variant.sku == sku)
    )
    if line is None:
        raise NotFound(f"the cart has no line for {sku!r}")
    await session.delete(line)
    await session.flush()
    await _touch(session, cart)


async def clear(session: AsyncSession, *, cart: Cart, status: str = CONVERTED) -> None:
    """Close a cart after checkout (its lines stay as a record of what was bought from it)."""
    cart.status = status
    await session.flush()
    if cart.user_id is not None:
        await changes.record(
            session, entity=changes.CART, entity_id=cart.id, user_id=cart.user_id, deleted=True
        )


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


async def lines_of(session: AsyncSession, *, cart: Cart) -> list[Line]:
    """The cart's lines as (sku, quantity), in the order they were added."""
    rows = await session.execute(
        select(Variant.sku, CartLine.quantity)
        .join(Variant, Variant.id == CartLine.variant_id)
        .where(CartLine.cart_id == cart.id)
        .order_by(CartLine.added_at, Variant.sku)
    )
    return [Line(sku, qty) for sku, qty in rows]


async def view(session: AsyncSession, *, cart: Cart | None, limits: Limits = DEFAULT_LIMITS) -> s.CartRead:
    """The cart priced now from the catalog, with availability for every line."""
    if cart is None:
        return s.CartRead(
            id=None,
            lines=[],
            item_count=0,
            subtotal_paise=0,
            mrp_total_paise=0,
            savings_paise=0,
            tax_paise=0,
            total_paise=0,
            checkout_ready=False,
            updated_at=None,
        )
    rows = (
        await session.execute(
            select(CartLine, Variant, Product)
            .join(Variant, Variant.id == CartLine.variant_id)
            .join(Product, Product.id == Variant.product_id)
            .where(CartLine.cart_id == cart.id)
            .order_by(CartLine.added_at, Variant.sku)
        )
    ).all()
    lines: list[s.CartLineRead] = []
    priced_ok: list[pricing.PricedLine] = []
    for line, variant, product in rows:
        priced = pricing.price_line(
            sku=variant.sku,
            quantity=line.quantity,
            price_paise=variant.price_paise,
            mrp_paise=variant.mrp_paise,
            tax_class=variant.tax_class,
        )
        avail = pricing.availability(
            quantity=line.quantity, stock=variant.stock, sellable=product.is_published and variant.is_active
        )
        if avail is pricing.Availability.ok:
            priced_ok.append(priced)
        lines.append(
            s.CartLineRead(
                sku=variant.sku,
                product_id=product.id,
                product_slug=product.slug,
                title=product.title,
                attributes=variant.attributes,
                image_url=product.image_urls[0] if product.image_urls else None,
                quantity=line.quantity,
                unit_price_paise=priced.unit_price_paise,
                unit_mrp_paise=priced.unit_mrp_paise,
                line_total_paise=priced.line_total_paise,
                tax_rate_percent=priced.tax_rate_percent,
                tax_paise=priced.tax_paise,
                availability=avail,
                available_quantity=max(0, min(variant.stock, limits.max_line_quantity)),
                price_changed_from_paise=(
                    line.price_at_add_paise if line.price_at_add_paise != variant.price_paise else None
                ),
            )
        )
    t = pricing.totals(priced_ok)
    return s.CartRead(
        id=cart.id,
        lines=lines,
        item_count=t.item_count,
        subtotal_paise=t.subtotal_paise,
        mrp_total_paise=t.mrp_total_paise,
        savings_paise=t.savings_paise,
        tax_paise=t.tax_paise,
        total_paise=t.total_paise,
        checkout_ready=bool(lines) and len(priced_ok) == len(lines),
        updated_at=cart.updated_at,
    )


async def merge_guest_cart(
    session: AsyncSession,
    *,
    guest_token: str,
    user_id: uuid.UUID,
    limits: Limits = DEFAULT_LIMITS,
) -> Cart | None:
    """Fold a guest cart into the user's cart at sign-in; returns the user's cart.

    Called by the accounts login flow inside its transaction. Quantities of the same item add up
    (capped at `limits.max_line_quantity`); items new to the user's cart are added, oldest
    first, only while it holds fewer than `limits.max_lines` different items (the rest stay in
    the closed guest cart). The guest cart is marked merged, so calling this again with the
    same token changes nothing. An unknown or already merged token is not an error: sign-in
    must not fail because of a stale cart token on the device.
    """
    max_line_quantity = limits.max_line_quantity
    h = hash_token(guest_token)
    both: Sequence[Cart] = (
        await session.scalars(
            select(Cart)
            .where(
                ((Cart.token_hash == h) & Cart.user_id.is_(None))
                | ((Cart.user_id == user_id) & (Cart.status == ACTIVE))
            )
            .order_by(Cart.id)  # always lock in id order: two merges can never deadlock
            .with_for_update()
        )
    ).all()
    guest = next((c for c in both if c.token_hash == h and c.user_id is None), None)
    mine = next((c for c in both if c.user_id == user_id), None)
    if guest is None or guest.status != ACTIVE:
        return mine
    if mine is None:
        guest.user_id = user_id  # adopt the guest cart as the user's
        await session.flush()
        await _touch(session, guest)
        return guest
    guest_lines = (
        await session.scalars(
            select(CartLine).where(CartLine.cart_id == guest.id).order_by(CartLine.added_at, CartLine.id)
        )
    ).all()
    held = set(await session.scalars(select(CartLine.variant_id).where(CartLine.cart_id == mine.id)))
    for gl in guest_lines:
        if gl.variant_id not in held:
            if len(held) >= limits.max_lines:
                continue  # no room for another item: the shopper sees it missing and may swap
            held.add(gl.variant_id)
        stmt = insert(CartLine).values(
            id=uuid.uuid4(),
            cart_id=mine.id,
            variant_id=gl.variant_id,
            quantity=min(gl.quantity, max_line_quantity),
            price_at_add_paise=gl.price_at_add_paise,
            added_at=gl.added_at,
            updated_at=utcnow(),
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["cart_id", "variant_id"],
                set_={
                    "quantity": func.least(CartLine.quantity + stmt.excluded.quantity, max_line_quantity),
                    "updated_at": func.now(),
                },
            )
        )
    guest.status = MERGED
    await session.flush()
    await _touch(session, mine)
    return mine
