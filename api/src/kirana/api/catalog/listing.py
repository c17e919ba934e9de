"""The public product listing: filters, sorts and keyset pages, in one statement per page.

Called by the catalog router (`GET /v1/catalog/products`, whose answers `listing_cache` keeps
and `catalog.edge` serves) and the commerce benchmark. The statement of each filter shape is
built once and cached (`_listing_statement`); the values travel as bound parameters. Read-only:
no HTTP, no commit.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, bindparam, exists, func, or_, select, true, tuple_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kirana.api import cursors
from kirana.api.catalog import pricing
from kirana.api.catalog import schemas as s
from kirana.api.catalog.models import Brand, Category, Product, Variant
from kirana.api.errors import InvalidInput, NotFound

_KEY_KINDS: dict[s.Sort, cursors.KeyKind] = {
    s.Sort.newest: "datetime",
    s.Sort.price_asc: "int",
    s.Sort.price_desc: "int",
    s.Sort.title_asc: "text",
}


def encode_cursor(sort: s.Sort, key: Any, last_id: uuid.UUID) -> str:
    """The cursor after the product `last_id`, whose sort key under `sort` is `key`."""
    return cursors.encode_keyset(sort.value, key, last_id)


def decode_cursor(cursor: str, sort: s.Sort) -> tuple[Any, uuid.UUID]:
    """The (sort key, id) an `encode_cursor` cursor of this sort holds; InvalidInput (422) for
    anything else, with its own message for a cursor of another sort."""
    return cursors.decode_keyset(cursor, sort.value, _KEY_KINDS[sort])


@dataclass(frozen=True)
class _Shape:
    """What decides the listing statement's SQL; the values travel as bound parameters."""

    sort: s.Sort
    category: bool
    brands: bool
    q: bool
    min_price: bool
    max_price: bool
    attributes: tuple[int, ...]  # how many values each attribute filter accepts
    in_stock: bool | None
    cursor: bool
    include_unpublished: bool


def _variant_filter(shape: _Shape) -> ColumnElement[bool] | None:
    """One EXISTS so that size, colour, price and stock all hold for the same variant."""
    conds: list[ColumnElement[bool]] = []
    if shape.min_price:
        conds.append(Variant.price_paise >= bindparam("min_price"))
    if shape.max_price:
        conds.append(Variant.price_paise <= bindparam("max_price"))
    for i, count in enumerate(shape.attributes):
        conds.append(
            or_(*[Variant.attributes.contains(bindparam(f"attr_{i}_{j}", type_=JSONB)) for j in range(count)])
        )
    if shape.in_stock:
        conds.append(Variant.stock > 0)
    if not conds:
        return None
    return exists().where(Variant.product_id == Product.id, Variant.is_active, *conds)


@functools.lru_cache(maxsize=512)
def _listing_statement(shape: _Shape) -> Any:
    """The listing statement of one shape, built once (building it costs more than running it).

    A category filter walks each category of the subtree along its `(category_id, sort key,
    id)` index (a LATERAL subquery with its own LIMIT) and merges the walks, instead of
    filtering a global walk.
    """
    in_stock = (
        exists()
        .where(Variant.product_id == Product.id, Variant.is_active, Variant.stock > 0)
        .correlate(Product)
    )
    newest_col: Any = (
        func.coalesce(Product.published_at, Product.created_at)
        if shape.include_unpublished
        else Product.published_at
    )
    key_col: Any = {
        s.Sort.newest: newest_col,
        s.Sort.price_asc: Product.min_price_paise,
        s.Sort.price_desc: Product.min_price_paise,
        s.Sort.title_asc: Product.title,
    }[shape.sort]
    descending = shape.sort in (s.Sort.newest, s.Sort.price_desc)
    stmt = (
        select(
            Product.id,
            Product.slug,
            Product.title,
            Product.image_urls[1].label("image_url"),
            Product.min_price_paise,
            Product.min_price_mrp_paise,
            func.coalesce(Product.published_at, Product.created_at).label("published_at"),
            Brand.name.label("brand"),
            Category.slug.label("category"),
            in_stock.label("in_stock"),
            key_col.label("sort_key"),
        )
        .join(Category, Category.id == Product.category_id)
        .outerjoin(Brand, Brand.id == Product.brand_id)
    )
    if not shape.include_unpublished:
        stmt = stmt.where(Product.is_published)
    if shape.brands:
        brand_ids = select(Brand.id).where(Brand.slug.in_(bindparam("brands", expanding=True)))
        stmt = stmt.where(Product.brand_id.in_(brand_ids))
    if shape.q:
        stmt = stmt.where(Product.title.ilike(bindparam("q"), escape="\\"))
    if shape.max_price:
        # Implied by the variant filter (the cheapest variant is at most any matching one), and
        # lets a price-sorted listing range-scan its index instead of skipping pricier products.
        stmt = stmt.where(Product.min_price_paise <= bindparam("max_price"))
    variant_cond = _variant_filter(shape)
    if variant_cond is not None:
        stmt = stmt.where(variant_cond)
    if shape.in_stock is False:
        stmt = stmt.where(~in_stock)
    if shape.cursor:
        pair = tuple_(key_col, Product.id)
        after = tuple_(
            bindparam("after_key", type_=key_col.type), bindparam("after_id", type_=Product.id.type)
        )
        stmt = stmt.where(pair < after if descending else pair > after)
    order = (key_col.desc(), Product.id.desc()) if descending else (key_col.asc(), Product.id.asc())
    fetch = bindparam("fetch", type_=Integer)
    if not shape.category:
        return stmt.order_by(*order).limit(fetch)
    root = select(Category.path).where(Category.slug == bindparam("category")).scalar_subquery()
    subtree = (
        select(Category.id.label("id"))
        .where(or_(Category.path == root, Category.path.startswith(root + "/")))
        .subquery("subtree")
    )
    walk = stmt.where(Product.category_id == subtree.c.id).order_by(*order).limit(fetch).lateral("walk")
    outer = (walk.c.sort_key.desc(), walk.c.id.desc()) if descending else (walk.c.sort_key, walk.c.id)
    return select(walk).select_from(subtree).join(walk, true()).order_by(*outer).limit(fetch)


async def list_products(session: AsyncSession, *, query: s.ProductQuery) -> s.ProductPage:
    """The listing inside the caller's transaction (see `read_listing`)."""
    return await read_listing(await session.connection(), query=query)


async def read_listing(conn: AsyncConnection, *, query: s.ProductQuery) -> s.ProductPage:
    """One keyset page of the listing in one statement (see `_listing_statement`); an empty
    page for an unknown category slug answers 404."""
    if (
        query.min_price_paise is not None
        and query.max_price_paise is not None
        and query.min_price_paise > query.max_price_paise
    ):
        raise InvalidInput("min_price_paise is greater than max_price_paise")
    sort = query.sort
    params: dict[str, Any] = {"fetch": query.limit + 1}
    if query.category:
        params["category"] = query.category
    if query.brands:
        params["brands"] = list(query.brands)
    if query.q:
        params["q"] = f"%{_escape_like(query.q)}%"
    if query.min_price_paise is not None:
        params["min_price"] = query.min_price_paise
    if query.max_price_paise is not None:
        params["max_price"] = query.max_price_paise
    for i, (name, values) in enumerate(query.attributes.items()):
        for j, value in enumerate(values):
            params[f"attr_{i}_{j}"] = {name: value}
    if query.cursor:
        params["after_key"], params["after_id"] = decode_cursor(query.cursor, sort)
    shape = _Shape(
        sort=sort,
        category=bool(query.category),
        brands=bool(query.brands),
        q=bool(query.q),
        min_price=query.min_price_paise is not None,
        max_price=query.max_price_paise is not None,
        attributes=tuple(len(values) for values in query.attributes.values()),
        in_stock=query.in_stock,
        cursor=bool(query.cursor),
        include_unpublished=query.include_unpublished,
    )
    rows = (await conn.execute(_listing_statement(shape), params)).all()
    if (
        not rows
        and query.category
        and await conn.scalar(select(Category.id).where(Category.slug == query.category)) is None
    ):
        raise NotFound(f"no category {query.category!r}")
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = [
        s.ProductSummary(
            id=r.id,
            slug=r.slug,
            title=r.title,
            brand=r.brand,
            category=r.category,
            image_url=r.image_url,
            price_paise=r.min_price_paise,
            mrp_paise=r.min_price_mrp_paise,
            discount_percent=pricing.discount_percent(r.min_price_paise, r.min_price_mrp_paise),
            in_stock=r.in_stock,
        )
        for r in rows
    ]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        key_value: Any = {
            s.Sort.newest: last.published_at.isoformat() if last.published_at else None,
            s.Sort.price_asc: last.min_price_paise,
            s.Sort.price_desc: last.min_price_paise,
            s.Sort.title_asc: last.title,
        }[sort]
        next_cursor = encode_cursor(sort, key_value, last.id)
    return s.ProductPage(items=items, next_cursor=next_cursor)


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
