"""Order placement: lock the variants, decide each order against the stock, write them all at once.

Called by the orders router (`place`, `checkout`), the order edge and group commit
(`orders.edge`, `orders.batch`, which compose the SQL fragments below with the idempotency
claim), and sync push (`checkout_order`).

No overselling: placement locks the order's variant rows with `SELECT ... ORDER BY id FOR
UPDATE` (every writer of stock locks variants in id order, so two orders can never deadlock),
re-checks price and stock under the lock, then decrements. A CHECK (stock >= 0) backs this up.
The two builders of `OrderRead` live here side by side: `answer` (an order as just written) and
`read_model` (an order read back), so that the order a client is answered at placement and the
order it reads later cannot differ. No HTTP, no commit.

Slightly over 400 lines because the decision (`allocate`) and the two `OrderRead` builders
belong beside the statements they decide on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.cart import service as carts
from kirana.api.catalog import pricing
from kirana.api.catalog.errors import NotSellable, OutOfStock, PriceChanged, UnknownSku
from kirana.api.errors import InvalidInput, InvalidState, KiranaError
from kirana.api.idempotency import service as idempotency
from kirana.api.orders import schemas as s
from kirana.api.orders import sql, unpaid
from kirana.api.orders.models import Order, OrderEvent, OrderLine
from kirana.api.orders.states import Status
from kirana.api.settings import Settings
from kirana.api.stores import service as stores


@dataclass(frozen=True)
class Policy:
    reservation: timedelta = timedelta(minutes=15)
    store_code: str = "main"
    limits: carts.Limits = carts.DEFAULT_LIMITS
    unpaid: unpaid.Caps = unpaid.Caps()
    unpaid_per_ip: int = 20  # unpaid orders at once from one client address, all accounts (0: off)


def policy_from(settings: Settings) -> Policy:
    return Policy(
        reservation=timedelta(minutes=settings.order_reservation_minutes),
        store_code=settings.default_store_code,
        limits=carts.Limits(
            max_line_quantity=settings.cart_max_line_quantity, max_lines=settings.cart_max_lines
        ),
        unpaid=unpaid.Caps(
            orders=settings.order_max_unpaid,
            units=settings.order_max_unpaid_units,
            units_per_item=settings.order_max_unpaid_units_per_item,
        ),
        unpaid_per_ip=settings.order_max_unpaid_per_ip,
    )


# -- placing orders -----------------------------------------------------------------------
#
# Placement is the hottest write, so it is written for PostgreSQL rather than as an ORM unit of
# work, and it places any number of orders at once (`orders.batch` gathers concurrent requests
# into one transaction; a single request is a batch of one):
#
# 1. lock every variant the orders name, in id order (`lock_variants`);
# 2. decide each order in turn against the stock left by the ones before it (`allocate`, pure);
# 3. write stock, orders, lines, history, sync changes and outbox events of all the accepted
#    orders in one statement of data-modifying CTEs (`write_orders`), whose foreign keys are
#    checked when it ends. Order ids are made here; numbers, timestamps and reservation
#    deadlines come back from the insert, and the answers are built from what was written.
#
# The statements and the types of their rows and parameters are `orders.sql`.


@dataclass(frozen=True)
class Placement:
    """One order to place: what a customer asked for, not yet checked."""

    user_id: uuid.UUID
    lines: Sequence[carts.Line]
    policy: Policy
    store_code: str | None = None
    expected_total_paise: int | None = None
    shipping_address: Mapping[str, Any] | None = None
    client_ip: str | None = None  # a global address (`unpaid.known_ip`), or None: not known


# The route of `admit`: part of every order key's fingerprint, so the route and the edge must agree.
PLACE_PATH = "/v1/orders"


def admit(
    *, user_id: uuid.UUID, key: str, data: s.PlaceOrder, policy: Policy, client: str | None
) -> tuple[idempotency.Request, Placement]:
    """What a `POST /v1/orders` with a valid Idempotency-Key becomes, for the route and the
    order edge alike: the key's claim (fingerprint of the method, path and body) and the order."""
    request = idempotency.request_of(
        owner=idempotency.owner_of(user_id),
        key=key,
        method="POST",
        path=PLACE_PATH,
        body=data.model_dump(mode="json"),
    )
    return request, placement_of(data, user_id=user_id, policy=policy, client=client)


def placement_of(
    data: s.PlaceOrder, *, user_id: uuid.UUID, policy: Policy, client: str | None = None
) -> Placement:
    """The order a `POST /v1/orders` body asks for."""
    return Placement(
        user_id=user_id,
        lines=[carts.Line(x.sku, x.quantity) for x in data.lines],
        policy=policy,
        store_code=data.store_code,
        expected_total_paise=data.expected_total_paise,
        shipping_address=data.shipping_address.model_dump() if data.shipping_address else None,
        client_ip=unpaid.known_ip(client),
    )


@dataclass(frozen=True)
class Accepted:
    """A placement that passed every check, priced, with the variants it takes."""

    order_id: uuid.UUID
    placement: Placement
    store_code: str
    priced: Sequence[pricing.PricedLine]  # sorted by SKU
    totals: pricing.Totals
    variants: Mapping[str, sql.LockedVariant]  # by SKU


def _wanted(lines: Sequence[carts.Line], policy: Policy) -> dict[str, int]:
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    if not wanted:
        raise InvalidInput("an order needs at least one line")
    if len(wanted) > policy.limits.max_lines:
        raise InvalidInput(
            f"an order holds at most {policy.limits.max_lines} different items",
            extra={"max_lines": policy.limits.max_lines, "lines": len(wanted)},
        )
    for sku, qty in wanted.items():
        if qty <= 0:
            raise InvalidInput(f"quantity of {sku} must be at least 1")
        if qty > policy.limits.max_line_quantity:
            raise InvalidInput(
                f"at most {policy.limits.max_line_quantity} of one item per order",
                extra={"sku": sku, "max_quantity": policy.limits.max_line_quantity},
            )
    return wanted


def skus_of(placements: Sequence[Placement]) -> list[str]:
    """Every SKU the placements name (what `lock_variants` must lock)."""
    return sorted({line.sku for p in placements for line in p.lines})


async def lock_variants(session: AsyncSession, skus: Sequence[str]) -> dict[str, sql.LockedVariant]:
    """Lock the variants with these SKUs (in id order, as every writer of stock does) and read
    what placement checks: price, MRP, tax class, stock and whether they are for sale."""
    rows = await sql.LOCK_VARIANTS.fetch(session, {"skus": list(skus)})
    return {row["sku"]: sql.locked_variant(row) for row in rows}


def unpaid_params(placements: Sequence[Placement]) -> dict[str, Any]:
    """The parameters of `sql.UNPAID_SELECT` for these placements (one policy for all): no
    customers when every cap is off, so nothing is read."""
    policy = placements[0].policy if placements else Policy()
    caps = policy.unpaid
    users = sorted({p.user_id for p in placements}) if caps.any_on else []
    ips = sorted({p.client_ip for p in placements if p.client_ip}) if policy.unpaid_per_ip else []
    return {
        "unpaid_users": users,
        "unpaid_read": caps.orders_read,
        "unpaid_ips": ips,
        "unpaid_ip_read": policy.unpaid_per_ip or None,
    }


async def lock_holders(session: AsyncSession, placements: Sequence[Placement]) -> dict[str, Any]:
    """Serialise the placements of these placements' customers, and from their client
    addresses, with every other transaction placing for them (`orders.unpaid`), when a cap is
    on: to be called before any variant lock and before the statement that reads their
    holdings. Returns `unpaid_params(placements)`."""
    params = unpaid_params(placements)
    locks = unpaid.lock_keys(params["unpaid_users"], params["unpaid_ips"])
    if locks:
        await sql.HOLDER_LOCKS.fetch(session, unpaid.lock_params(locks))
    return params


def requested_stores(placements: Sequence[Placement]) -> list[str]:
    """The store codes the customers named (the shop's default store is configuration, not input)."""
    return sorted({p.store_code for p in placements if p.store_code is not None})


def _accept(
    placement: Placement,
    found: Mapping[str, sql.LockedVariant],
    left: dict[str, int],
    open_stores: Set[str],
    held: unpaid.Held,
    from_ip: unpaid.Held | None,
) -> Accepted:
    wanted = _wanted(placement.lines, placement.policy)
    if placement.store_code is not None and placement.store_code not in open_stores:
        raise stores.unknown(placement.store_code)
    unpaid.check(held, wanted, placement.policy.unpaid)
    if from_ip is not None:
        unpaid.check_ip(from_ip, placement.policy.unpaid_per_ip)
    unknown = sorted(set(wanted) - set(found))
    if unknown:
        raise UnknownSku(f"unknown SKU(s): {', '.join(unknown)}", extra={"skus": unknown})
    unsellable = sorted(sku for sku in wanted if not found[sku]["sellable"])
    if unsellable:
        raise NotSellable(f"not for sale at the moment: {', '.join(unsellable)}", extra={"skus": unsellable})
    short = [
        {"sku": sku, "requested": qty, "available": left[sku]}
        for sku, qty in sorted(wanted.items())
        if left[sku] < qty
    ]
    if short:
        detail = "; ".join(f"{x['sku']}: {x['available']} left, {x['requested']} wanted" for x in short)
        raise OutOfStock(f"not enough stock ({detail})", extra={"lines": short})
    priced = [
        pricing.price_line(
            sku=sku,
            quantity=qty,
            price_paise=found[sku]["price_paise"],
            mrp_paise=found[sku]["mrp_paise"],
            tax_class=found[sku]["tax_class"],
        )
        for sku, qty in sorted(wanted.items())
    ]
    totals = pricing.totals(priced)
    expected = placement.expected_total_paise
    if expected is not None and expected != totals.total_paise:
        raise PriceChanged(
            f"the total is now {totals.total_paise} paise, not {expected}; review the cart",
            extra={"expected_total_paise": expected, "total_paise": totals.total_paise},
        )
    for sku, qty in wanted.items():
        left[sku] -= qty
    order_id = uuid.uuid4()
    unpaid.take(held, order_id, wanted)
    if from_ip is not None:
        from_ip.orders.add(order_id)
    return Accepted(
        order_id=order_id,
        placement=placement,
        store_code=placement.store_code or placement.policy.store_code,
        priced=priced,
        totals=totals,
        variants={sku: found[sku] for sku in wanted},
    )


def allocate(
    placements: Sequence[Placement],
    found: Mapping[str, sql.LockedVariant],
    *,
    open_stores: Set[str] = frozenset(),
    unpaid_rows: Sequence[Mapping[str, Any]] = (),
    unpaid_ip_rows: Sequence[Mapping[str, Any]] = (),
) -> list[Accepted | KiranaError]:
    """Decide each placement in turn against the locked variants, the open stores among the
    ones they name, what their customers' unpaid orders hold (`sql.UNPAID_SELECT` rows) and
    the unpaid orders from their client addresses (`sql.UNPAID_BY_IP_SELECT` rows):
    accepted (its stock and holding counted for the ones after it), or the domain error that
    refuses it (UnknownSku 422, InvalidInput 422, UnknownStore 422, NotSellable 409,
    OutOfStock 409, PriceChanged 409, TooManyUnpaid 409)."""
    left = {sku: int(row["stock"]) for sku, row in found.items()}
    held = unpaid.held_of(unpaid_rows)
    by_ip = unpaid.held_by_ip(unpaid_ip_rows)
    out: list[Accepted | KiranaError] = []
    for placement in placements:
        mine = held.setdefault(placement.user_id, unpaid.Held())
        ip = placement.client_ip
        from_ip = by_ip.setdefault(ip, unpaid.Held()) if ip and placement.policy.unpaid_per_ip else None
        try:
            out.append(_accept(placement, found, left, open_stores, mine, from_ip))
        except KiranaError as exc:
            out.append(exc)
    return out


def write_params(accepted: Sequence[Accepted], numbers: Sequence[int] | None = None) -> sql.WriteParams:
    """The parameters of WRITE_CTES for these orders (`numbers`: their order numbers, if taken
    from the sequence already)."""
    lines = [(a.order_id, a.variants[p.sku]["id"], p) for a in accepted for p in a.priced]
    addresses = [_address(a.placement) for a in accepted]
    return sql.WriteParams(
        {
            "order_ids": [a.order_id for a in accepted],
            "user_ids": [a.placement.user_id for a in accepted],
            "store_codes": [a.store_code for a in accepted],
            "subtotals": [a.totals.subtotal_paise for a in accepted],
            "mrp_totals": [a.totals.mrp_total_paise for a in accepted],
            "taxes": [a.totals.tax_paise for a in accepted],
            "totals": [a.totals.total_paise for a in accepted],
            "item_counts": [a.totals.item_count for a in accepted],
            "addresses": [json.dumps(x) if x is not None else None for x in addresses],
            "reservations": [a.placement.policy.reservation for a in accepted],
            "numbers": list(numbers) if numbers is not None else [None for _ in accepted],
            "client_ips": [a.placement.client_ip for a in accepted],
            "line_orders": [order_id for order_id, _, _ in lines],
            "variant_ids": [variant_id for _, variant_id, _ in lines],
            "quantities": [p.quantity for _, _, p in lines],
            "unit_prices": [p.unit_price_paise for _, _, p in lines],
            "unit_mrps": [p.unit_mrp_paise for _, _, p in lines],
            "tax_rates": [p.tax_rate_percent for _, _, p in lines],
            "line_taxes": [p.tax_paise for _, _, p in lines],
            "line_totals": [p.line_total_paise for _, _, p in lines],
        }
    )


async def write_orders(session: AsyncSession, accepted: Sequence[Accepted]) -> list[s.OrderRead]:
    """Reserve the stock of the accepted orders and create them, in the session's transaction;
    the new orders as the API shows them, in the same order."""
    if not accepted:
        return []
    rows = cast("Sequence[sql.WrittenOrder]", await sql.WRITE_ORDERS.fetch(session, write_params(accepted)))
    written = {row["id"]: row for row in rows}
    return [
        answer(a, number=written[a.order_id]["number"], at=written[a.order_id]["created_at"])
        for a in accepted
    ]


def _address(placement: Placement) -> dict[str, Any] | None:
    return dict(placement.shipping_address) if placement.shipping_address else None


def answer(a: Accepted, *, number: int, at: datetime) -> s.OrderRead:
    """The order as the API shows it once written with this number by a transaction that began
    at `at` (`now()`: its creation time, and its reservation's start)."""
    user_id, totals = a.placement.user_id, a.totals
    return s.OrderRead(
        id=a.order_id,
        number=number,
        user_id=user_id,
        store_code=a.store_code,
        status=Status.pending_payment,
        currency="INR",
        item_count=totals.item_count,
        subtotal_paise=totals.subtotal_paise,
        mrp_total_paise=totals.mrp_total_paise,
        savings_paise=totals.savings_paise,
        tax_paise=totals.tax_paise,
        total_paise=totals.total_paise,
        discount_paise=0,
        due_paise=totals.total_paise,
        shipping_address=_address(a.placement),
        reservation_expires_at=at + a.placement.policy.reservation,
        paid_at=None,
        created_at=at,
        updated_at=at,
        lines=[
            s.OrderLineRead(
                sku=p.sku,
                title=a.variants[p.sku]["title"],
                attributes=a.variants[p.sku]["attributes"],
                quantity=p.quantity,
                unit_price_paise=p.unit_price_paise,
                unit_mrp_paise=p.unit_mrp_paise,
                tax_rate_percent=p.tax_rate_percent,
                tax_paise=p.tax_paise,
                line_total_paise=p.line_total_paise,
            )
            for p in a.priced
        ],
        history=[
            s.OrderEventRead(
                from_status=None,
                to_status=Status.pending_payment.value,
                actor_id=user_id,
                actor_kind="customer",
                reason=None,
                created_at=at,
            )
        ],
    )


async def place_order(session: AsyncSession, placement: Placement) -> s.OrderRead:
    """Re-validate prices and stock, reserve stock and create the order, all in the caller's
    transaction; returns the new order as the API shows it. Raises InvalidInput (422),
    UnknownSku (422), UnknownStore (422), NotSellable (409), OutOfStock (409), PriceChanged (409),
    TooManyUnpaid (409)."""
    _wanted(placement.lines, placement.policy)  # bad input is refused before any lock is taken
    params = await lock_holders(session, [placement])
    found = await lock_variants(session, skus_of([placement]))
    open_stores = await stores.active_codes(session, requested_stores([placement]))
    held = await sql.UNPAID.fetch(session, params) if params["unpaid_users"] else ()
    from_ip = await sql.UNPAID_BY_IP.fetch(session, params) if params["unpaid_ips"] else ()
    (decided,) = allocate(
        [placement], found, open_stores=open_stores, unpaid_rows=held, unpaid_ip_rows=from_ip
    )
    if isinstance(decided, KiranaError):
        raise decided
    (placed,) = await write_orders(session, [decided])
    return placed


async def checkout_order(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    policy: Policy,
    store_code: str | None = None,
    expected_total_paise: int | None = None,
    shipping_address: Mapping[str, Any] | None = None,
    client: str | None = None,
) -> s.OrderRead:
    """Place an order for everything in the user's cart, then close the cart (`client`: the
    caller's address as the app sees it)."""
    cart = await carts.user_cart(session, user_id=user_id, create=False, lock=True)
    lines = await carts.lines_of(session, cart=cart) if cart else []
    if cart is None or not lines:
        raise InvalidState("the cart is empty")
    placed = await place_order(
        session,
        Placement(
            user_id,
            lines,
            policy,
            store_code,
            expected_total_paise,
            shipping_address,
            client_ip=unpaid.known_ip(client),
        ),
    )
    await carts.clear(session, cart=cart)
    return placed


def location(order_id: uuid.UUID) -> str:
    """Where a placed order is read (`Location` of the 201 that placed it)."""
    return f"/v1/orders/{order_id}"


def read_model(order: Order, lines: Sequence[OrderLine], history: Sequence[OrderEvent]) -> s.OrderRead:
    return s.OrderRead(
        id=order.id,
        number=order.number,
        user_id=order.user_id,
        store_code=order.store_code,
        status=Status(order.status),
        currency=order.currency,
        item_count=order.item_count,
        subtotal_paise=order.subtotal_paise,
        mrp_total_paise=order.mrp_total_paise,
        savings_paise=order.mrp_total_paise - order.subtotal_paise,
        tax_paise=order.tax_paise,
        total_paise=order.total_paise,
        discount_paise=order.discount_paise or 0,
        due_paise=order.due_paise,
        shipping_address=order.shipping_address,
        reservation_expires_at=order.reservation_expires_at
        if order.status == Status.pending_payment
        else None,
        paid_at=order.paid_at,
        created_at=order.created_at,
        updated_at=order.updated_at,
        lines=[s.OrderLineRead.model_validate(x) for x in lines],
        history=[s.OrderEventRead.model_validate(e) for e in history],
    )
