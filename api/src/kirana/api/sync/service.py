"""Offline sync: `pull` what changed since a cursor, `push` mutations recorded offline.

Called by the sync router (the mobile app). The protocol is documented in docs/sync-protocol.md.
Pull walks `sync_changes` by its sequence number and returns the *current* state of each changed
entity (or a tombstone when it is gone, unpublished or no longer the user's). Push applies each
mutation once (keyed by the user and its client mutation id) inside a savepoint, so one rejected
mutation never undoes the others; one that fails validation, or whose values the database
refuses (SQLSTATE class 22), is rejected alone too. The server stays authoritative for price and stock.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.cart import service as carts
from kirana.api.cart.models import ACTIVE, Cart
from kirana.api.catalog import schemas as catalog_schemas
from kirana.api.catalog import service as catalog
from kirana.api.catalog.errors import PriceChanged
from kirana.api.catalog.models import Brand, Category, Variant
from kirana.api.db import errors as db_errors
from kirana.api.errors import InvalidInput, KiranaError, PermissionDenied
from kirana.api.orders import placement
from kirana.api.orders import service as orders
from kirana.api.orders.models import Order
from kirana.api.sync import changes
from kirana.api.sync import schemas as s
from kirana.api.sync.models import SyncChange, SyncFloor, SyncMutation

MAX_CURSOR = 2**62


class CursorExpired(KiranaError):
    status, code, title = 410, "sync-cursor-expired", "Sync cursor expired"


def parse_cursor(cursor: str | None) -> int:
    """The sequence number a pull cursor holds (none or empty: 0); InvalidInput (422) otherwise."""
    if cursor is None or cursor == "":
        return 0
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 19 or int(cursor) > MAX_CURSOR:
        raise InvalidInput("the cursor is malformed: send the cursor string from the last pull, or none")
    return int(cursor)


async def pull(
    session: AsyncSession, *, cursor: str | None, user_id: uuid.UUID | None, limit: int = 500
) -> s.PullPage:
    """Everything that changed after `cursor`: the catalog for anyone, the user's cart and orders when signed
    in; one page of at most `limit` changes."""
    after = parse_cursor(cursor)
    # Number anything committed but not yet numbered, in a short transaction of its own, so
    # this pull sees changes made a moment ago (the worker does the same every second).
    async with AsyncSession(bind=session.bind) as stamper, stamper.begin():
        await changes.stamp(stamper)
    floor = await session.scalar(select(SyncFloor.floor_seq).where(SyncFloor.id == 1)) or 0
    # Read the high-water mark first: every number at or below it is already visible, because
    # numbers are handed out by one sequencer at a time, each committing before the next.
    high = await session.scalar(select(func.coalesce(func.max(SyncChange.seq), 0)))
    assert high is not None
    if 0 < after < floor:
        raise CursorExpired(
            "changes since this cursor have been compacted away; discard local data and pull from the start",
            extra={"floor": str(floor)},
        )
    if after > high:
        raise CursorExpired(
            "this cursor is ahead of the server (was the database restored?); pull from the start",
            extra={"high": str(high)},
        )
    visible: ColumnElement[bool] = SyncChange.user_id.is_(None)
    if user_id is not None:
        visible = or_(visible, SyncChange.user_id == user_id)
    rows = (
        await session.execute(
            select(SyncChange.seq, SyncChange.entity, SyncChange.entity_id)
            .where(SyncChange.seq > after, SyncChange.seq <= high, visible)
            .order_by(SyncChange.seq)
            .limit(limit)
        )
    ).all()
    has_more = len(rows) == limit
    new_cursor = rows[-1].seq if has_more else high
    latest: dict[tuple[str, uuid.UUID], int] = {}
    for seq, entity, entity_id in rows:
        assert seq is not None
        latest[(entity, entity_id)] = seq
    items = await _materialise(session, latest, user_id=user_id)
    items.sort(key=lambda c: c.seq)
    return s.PullPage(cursor=str(new_cursor), has_more=has_more, changes=items)


def _ids(latest: dict[tuple[str, uuid.UUID], int], entity: str) -> list[uuid.UUID]:
    return [eid for (ent, eid) in latest if ent == entity]


async def _materialise(
    session: AsyncSession, latest: dict[tuple[str, uuid.UUID], int], *, user_id: uuid.UUID | None
) -> list[s.Change]:
    out: list[s.Change] = []

    def emit(entity: s.Entity, eid: uuid.UUID, data: dict[str, Any] | None) -> None:
        out.append(
            s.Change(entity=entity, id=eid, seq=latest[(entity.value, eid)], deleted=data is None, data=data)
        )

    product_ids = _ids(latest, changes.PRODUCT)
    views = await catalog.product_views(session, ids=product_ids)
    for pid in product_ids:
        view = views.get(pid)
        published = view is not None and view.product.is_published
        emit(
            s.Entity.product,
            pid,
            catalog.render_product(view).model_dump(mode="json") if published and view else None,
        )

    simple: tuple[tuple[s.Entity, Any, Any], ...] = (
        (s.Entity.category, Category, catalog_schemas.CategoryRead),
        (s.Entity.brand, Brand, catalog_schemas.BrandRead),
    )
    for entity, model, schema in simple:
        ids = _ids(latest, entity.value)
        found = (
            {r.id: r for r in (await session.scalars(select(model).where(model.id.in_(ids)))).all()}
            if ids
            else {}
        )
        for eid in ids:
            row = found.get(eid)
            emit(entity, eid, schema.model_validate(row).model_dump(mode="json") if row is not None else None)

    cart_ids = _ids(latest, changes.CART)
    if cart_ids and user_id is not None:
        found_carts = {
            c.id: c
            for c in await session.scalars(
                select(Cart).where(Cart.id.in_(cart_ids), Cart.user_id == user_id, Cart.status == ACTIVE)
            )
        }
        for cid in cart_ids:
            cart = found_carts.get(cid)
            emit(
                s.Entity.cart,
                cid,
                (await carts.view(session, cart=cart)).model_dump(mode="json") if cart else None,
            )

    order_ids = _ids(latest, changes.ORDER)
    if order_ids and user_id is not None:
        found_orders = {
            o.id: o
            for o in await session.scalars(
                select(Order).where(Order.id.in_(order_ids), Order.user_id == user_id)
            )
        }
        for oid in order_ids:
            order = found_orders.get(oid)
            emit(
                s.Entity.order,
                oid,
                (await orders.render(session, order=order)).model_dump(mode="json") if order else None,
            )
    return out


# -- push ---------------------------------------------------------------------------------


def _fingerprint(m: s.Mutation) -> str:
    body = m.model_dump(mode="json")
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def push(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    mutations: Sequence[s.Mutation | s.Unreadable],
    policy: placement.Policy,
    may_place: bool = True,
    client: str | None = None,
) -> s.PushResponse:
    """Apply the device's queued mutations in order, each answered on its own (applied or
    rejected; a mutation id seen before gets its first answer again, marked replayed). One that
    failed validation is rejected alone (`validation-error`, never stored: nothing was applied).
    `client`: the device's address as the app sees it (the per-address cap of unpaid orders)."""
    results = []
    for m in mutations:
        if isinstance(m, s.Unreadable):
            results.append(
                s.MutationResult(
                    client_mutation_id=m.client_mutation_id,
                    status="rejected",
                    reason="validation-error",
                    detail=f"{len(m.errors)} field(s) failed validation",
                    data={"errors": m.errors},
                )
            )
            continue
        results.append(
            await _push_one(session, user_id=user_id, m=m, policy=policy, may_place=may_place, client=client)
        )
    return s.PushResponse(results=results)


async def _push_one(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    m: s.Mutation,
    policy: placement.Policy,
    may_place: bool,
    client: str | None,
) -> s.MutationResult:
    fp = _fingerprint(m)
    # A concurrent push of the same mutation waits here on the primary key until the first
    # commits, then finds its stored answer: each mutation is applied exactly once.
    claimed = await session.scalar(
        insert(SyncMutation)
        .values(
            user_id=user_id,
            client_mutation_id=m.client_mutation_id,
            kind=m.type,
            fingerprint=fp,
            status="pending",
        )
        .on_conflict_do_nothing()
        .returning(SyncMutation.client_mutation_id)
    )
    if claimed is None:
        stored = await session.get(SyncMutation, (user_id, m.client_mutation_id))
        assert stored is not None
        if stored.fingerprint != fp:
            return s.MutationResult(
                client_mutation_id=m.client_mutation_id,
                status="rejected",
                reason="mutation-id-reused",
                detail="this client_mutation_id was already used for a different mutation",
            )
        return s.MutationResult.model_validate({**stored.result, "replayed": True})
    try:
        if m.type == "order.place" and not may_place:
            raise PermissionDenied("requires orders:create")
        try:
            async with session.begin_nested():
                data = await _apply(session, user_id=user_id, m=m, policy=policy, client=client)
        except Exception as exc:  # a value the database refuses is this mutation's fault alone
            refused = db_errors.as_invalid_input(exc)
            if refused is None:
                raise
            raise refused from exc
        result = s.MutationResult(client_mutation_id=m.client_mutation_id, status="applied", data=data)
    except KiranaError as exc:
        result = s.MutationResult(
            client_mutation_id=m.client_mutation_id,
            status="rejected",
            reason=exc.code,
            detail=exc.detail,
            data=dict(exc.extra),
        )
    await session.execute(
        update(SyncMutation)
        .where(SyncMutation.user_id == user_id, SyncMutation.client_mutation_id == m.client_mutation_id)
        .values(status=result.status, result=result.model_dump(mode="json"))
    )
    return result


async def _apply(
    session: AsyncSession, *, user_id: uuid.UUID, m: s.Mutation, policy: placement.Policy, client: str | None
) -> dict[str, Any]:
    if m.type == "order.place":
        order = await placement.checkout_order(
            session,
            user_id=user_id,
            policy=policy,
            store_code=m.store_code,
            expected_total_paise=m.expected_total_paise,
            shipping_address=m.shipping_address.model_dump() if m.shipping_address else None,
            client=client,
        )
        return {"order_id": str(order.id), "number": order.number, "total_paise": order.total_paise}
    cart = await carts.user_cart(session, user_id=user_id, create=True, lock=True)
    assert cart is not None and m.sku is not None
    if m.type == "cart.remove":
        await carts.remove_line(session, cart=cart, sku=m.sku)
        return {"cart_id": str(cart.id)}
    if m.expected_unit_price_paise is not None:
        price = await session.scalar(select(Variant.price_paise).where(Variant.sku == m.sku))
        if price is not None and price != m.expected_unit_price_paise:
            raise PriceChanged(
                f"{m.sku} now costs {price} paise, not {m.expected_unit_price_paise}",
                extra={"sku": m.sku, "unit_price_paise": price},
            )
    assert m.quantity is not None
    await carts.set_line(
        session, cart=cart, sku=m.sku, quantity=m.quantity, add=m.type == "cart.add", limits=policy.limits
    )
    return {"cart_id": str(cart.id)}


async def compact(session: AsyncSession, *, keep_tombstone_seqs: int = 0) -> int:
    """Drop change rows superseded by a newer row for the same entity (the pull only ever
    returns current state, so older rows add nothing). Returns rows deleted."""
    del keep_tombstone_seqs
    result = await session.execute(
        text(
            "DELETE FROM sync_changes c USING sync_changes n "
            "WHERE n.entity = c.entity AND n.entity_id = c.entity_id "
            "AND c.seq IS NOT NULL AND n.seq IS NOT NULL AND n.seq > c.seq"
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
