"""Catalog operations: staff CRUD, publish/unpublish, stock adjustments, variant lookups.

Called by the catalog router, the cart and orders (variant lookups) and sync (product state);
the public listing is `catalog.listing`. Every change records a sync change so the mobile
app's pull sees it. No HTTP, no commit. Past 400 lines because it is the staff CRUD of four
entities (brands, categories, products, variants) that share slug lookups, uniqueness
handling and the sync record; each section is short.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.catalog import pricing
from kirana.api.catalog import schemas as s
from kirana.api.catalog.models import Brand, Category, Product, Variant
from kirana.api.db.base import utcnow
from kirana.api.errors import Conflict, InvalidInput, NotFound
from kirana.api.sync import changes

# -- brands -------------------------------------------------------------------------------


async def _brand_by_slug(session: AsyncSession, slug: str) -> Brand:
    brand = await session.scalar(select(Brand).where(Brand.slug == slug))
    if brand is None:
        raise NotFound(f"no brand {slug!r}")
    return brand


async def list_brands(session: AsyncSession) -> Sequence[Brand]:
    """Every brand, by name."""
    return (await session.scalars(select(Brand).order_by(Brand.name))).all()


async def create_brand(session: AsyncSession, *, data: s.BrandCreate) -> Brand:
    """Create a brand; 409 when the slug is taken."""
    brand = Brand(slug=data.slug, name=data.name)
    session.add(brand)
    await _flush_unique(session, f"a brand with slug {data.slug!r} already exists")
    await changes.record(session, entity=changes.BRAND, entity_id=brand.id)
    return brand


async def update_brand(session: AsyncSession, *, slug: str, data: s.BrandUpdate) -> Brand:
    """Rename a brand; NotFound for an unknown slug."""
    brand = await _brand_by_slug(session, slug)
    if data.name is not None:
        brand.name = data.name
    await session.flush()
    await changes.record(session, entity=changes.BRAND, entity_id=brand.id)
    return brand


async def delete_brand(session: AsyncSession, *, slug: str) -> None:
    """Delete a brand that no product uses (409 otherwise)."""
    brand = await _brand_by_slug(session, slug)
    in_use = await session.scalar(select(exists().where(Product.brand_id == brand.id)))
    if in_use:
        raise Conflict(f"brand {slug!r} still has products; move or delete them first")
    await session.delete(brand)
    await session.flush()
    await changes.record(session, entity=changes.BRAND, entity_id=brand.id, deleted=True)


# -- categories ---------------------------------------------------------------------------


async def _category_by_slug(session: AsyncSession, slug: str) -> Category:
    category = await session.scalar(select(Category).where(Category.slug == slug))
    if category is None:
        raise NotFound(f"no category {slug!r}")
    return category


async def list_categories(session: AsyncSession) -> Sequence[Category]:
    """Every category, in tree order (by path)."""
    stmt = select(Category).order_by(Category.path)
    return (await session.scalars(stmt)).all()


def build_tree(categories: Sequence[Category]) -> list[s.CategoryNode]:
    """Nest categories (sorted by path, so parents come first) into a forest."""
    nodes = {c.id: s.CategoryNode.model_validate(c) for c in categories}
    roots: list[s.CategoryNode] = []
    for c in categories:
        node = nodes[c.id]
        parent = nodes.get(c.parent_id) if c.parent_id else None
        (parent.children if parent else roots).append(node)
    for node in nodes.values():
        node.children.sort(key=lambda n: (n.position, n.name))
    roots.sort(key=lambda n: (n.position, n.name))
    return roots


async def create_category(session: AsyncSession, *, data: s.CategoryCreate) -> Category:
    """Create a category, under `parent` if given (nesting depth is limited); 409 when the slug is taken."""
    path = data.slug
    parent_id = None
    if data.parent:
        parent = await _category_by_slug(session, data.parent)
        parent_id, path = parent.id, f"{parent.path}/{data.slug}"
        if path.count("/") >= 6:
            raise InvalidInput("categories nest at most 7 levels deep")
    category = Category(
        slug=data.slug, name=data.name, parent_id=parent_id, path=path, position=data.position
    )
    session.add(category)
    await _flush_unique(session, f"a category with slug {data.slug!r} already exists")
    await changes.record(session, entity=changes.CATEGORY, entity_id=category.id)
    return category


async def update_category(session: AsyncSession, *, slug: str, data: s.CategoryUpdate) -> Category:
    """Rename or reposition a category; NotFound for an unknown slug."""
    category = await _category_by_slug(session, slug)
    if data.name is not None:
        category.name = data.name
    if data.position is not None:
        category.position = data.position
    await session.flush()
    await changes.record(session, entity=changes.CATEGORY, entity_id=category.id)
    return category


async def delete_category(session: AsyncSession, *, slug: str) -> None:
    """Delete a category with no subcategories and no products (409 otherwise)."""
    category = await _category_by_slug(session, slug)
    if await session.scalar(select(exists().where(Category.parent_id == category.id))):
        raise Conflict(f"category {slug!r} has subcategories; delete or move them first")
    if await session.scalar(select(exists().where(Product.category_id == category.id))):
        raise Conflict(f"category {slug!r} still has products; move or delete them first")
    await session.delete(category)
    await session.flush()
    await changes.record(session, entity=changes.CATEGORY, entity_id=category.id, deleted=True)


# -- products and variants ----------------------------------------------------------------


@dataclass(frozen=True)
class ProductView:
    product: Product
    brand: Brand | None
    category: Category
    variants: Sequence[Variant]


async def _product(session: AsyncSession, ref: str, *, for_update: bool = False) -> Product:
    """A product by id or slug."""
    try:
        cond = Product.id == uuid.UUID(ref)
    except ValueError:
        cond = Product.slug == ref
    stmt = select(Product).where(cond)
    if for_update:
        stmt = stmt.with_for_update()
    product = await session.scalar(stmt)
    if product is None:
        raise NotFound(f"no product {ref!r}")
    return product


async def get_product(session: AsyncSession, *, ref: str, include_unpublished: bool = False) -> ProductView:
    """A product by id or slug with its brand, category and variants (drafts only with
    `include_unpublished`)."""
    product = await _product(session, ref)
    if not product.is_published and not include_unpublished:
        raise NotFound(f"no product {ref!r}")
    return await _view(session, product)


async def _view(session: AsyncSession, product: Product) -> ProductView:
    variants = (
        await session.scalars(
            select(Variant).where(Variant.product_id == product.id).order_by(Variant.position, Variant.sku)
        )
    ).all()
    brand = await session.get(Brand, product.brand_id) if product.brand_id else None
    category = await session.get(Category, product.category_id)
    assert category is not None
    return ProductView(product, brand, category, variants)


async def product_views(session: AsyncSession, *, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ProductView]:
    """Many products at once (sync pull): four queries however many products."""
    if not ids:
        return {}
    products = (await session.scalars(select(Product).where(Product.id.in_(ids)))).all()
    variants: dict[uuid.UUID, list[Variant]] = {p.id: [] for p in products}
    for v in await session.scalars(
        select(Variant).where(Variant.product_id.in_(ids)).order_by(Variant.position, Variant.sku)
    ):
        variants[v.product_id].append(v)
    brand_ids = {p.brand_id for p in products if p.brand_id}
    brands = {b.id: b for b in await session.scalars(select(Brand).where(Brand.id.in_(brand_ids)))}
    cats = {
        c.id: c
        for c in await session.scalars(
            select(Category).where(Category.id.in_({p.category_id for p in products}))
        )
    }
    return {
        p.id: ProductView(
            p, brands.get(p.brand_id) if p.brand_id else None, cats[p.category_id], variants[p.id]
        )
        for p in products
    }


def render_product(view: ProductView, *, include_inactive: bool = False) -> s.ProductRead:
    """The product as the API shows it (inactive variants only with `include_inactive`)."""
    p = view.product
    variants = [v for v in view.variants if v.is_active or include_inactive]
    sellable = [v for v in variants if v.is_active]
    cheapest = min(sellable, key=lambda v: v.price_paise, default=None)
    return s.ProductRead(
        id=p.id,
        slug=p.slug,
        title=p.title,
        description=p.description,
        brand=s.BrandRead.model_validate(view.brand) if view.brand else None,
        category=s.CategoryRead.model_validate(view.category),
        image_urls=list(p.image_urls),
        is_published=p.is_published,
        published_at=p.published_at,
        price_paise=cheapest.price_paise if cheapest else 0,
        mrp_paise=cheapest.mrp_paise if cheapest else 0,
        discount_percent=pricing.discount_percent(cheapest.price_paise, cheapest.mrp_paise)
        if cheapest
        else 0,
        in_stock=any(v.stock > 0 for v in sellable),
        variants=[
            s.VariantRead(
                sku=v.sku,
                attributes=v.attributes,
                price_paise=v.price_paise,
                mrp_paise=v.mrp_paise,
                discount_percent=pricing.discount_percent(v.price_paise, v.mrp_paise),
                tax_class=v.tax_class,
                tax_rate_percent=pricing.tax_rate(v.tax_class),
                in_stock=v.is_active and v.stock > 0,
                stock=v.stock,
                is_active=v.is_active,
            )
            for v in variants
        ],
        updated_at=max([p.updated_at, *(v.updated_at for v in variants)]),
    )


async def refresh_price_bounds(session: AsyncSession, *, product_ids: Sequence[uuid.UUID]) -> None:
    """Recompute the denormalised cheapest price (and its MRP) used to sort listings."""
    if not product_ids:
        return
    price = (
        select(func.min(Variant.price_paise))
        .where(Variant.product_id == Product.id, Variant.is_active)
        .scalar_subquery()
    )
    mrp = (
        select(Variant.mrp_paise)
        .where(Variant.product_id == Product.id, Variant.is_active)
        .order_by(Variant.price_paise, Variant.mrp_paise)
        .limit(1)
        .scalar_subquery()
    )
    await session.execute(
        update(Product)
        .where(Product.id.in_(product_ids))
        .values(min_price_paise=func.coalesce(price, 0), min_price_mrp_paise=func.coalesce(mrp, 0))
        .execution_options(synchronize_session=False)
    )


# SQLSTATEs of a delete that something still refers to: restrict_violation (an ON DELETE
# RESTRICT key) and foreign_key_violation (NO ACTION).
_STILL_REFERENCED = frozenset({"23001", "23503"})


async def _flush_unique(session: AsyncSession, message: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        if "unique" in str(exc.orig).lower() or "duplicate" in str(exc.orig).lower():
            raise Conflict(message) from None
        raise


async def _sku_taken(session: AsyncSession, skus: Sequence[str]) -> list[str]:
    return list((await session.scalars(select(Variant.sku).where(Variant.sku.in_(skus)))).all())


async def create_product(session: AsyncSession, *, data: s.ProductCreate) -> ProductView:
    """Create a product with its variants (published at once if asked); 409 for a taken slug or SKU."""
    category = await _category_by_slug(session, data.category)
    brand = await _brand_by_slug(session, data.brand) if data.brand else None
    taken = await _sku_taken(session, [v.sku for v in data.variants])
    if taken:
        raise Conflict(f"SKU(s) already exist: {', '.join(sorted(taken))}", extra={"skus": sorted(taken)})
    now = utcnow()
    product = Product(
        slug=data.slug,
        title=data.title,
        description=data.description,
        brand_id=brand.id if brand else None,
        category_id=category.id,
        image_urls=[str(u) for u in data.image_urls],
        is_published=data.publish,
        published_at=now if data.publish else None,
    )
    session.add(product)
    await _flush_unique(session, f"a product with slug {data.slug!r} already exists")
    for i, v in enumerate(data.variants):
        session.add(
            Variant(
                product_id=product.id,
                sku=v.sku,
                attributes=v.attributes,
                price_paise=v.price_paise,
                mrp_paise=v.mrp_paise,
                tax_class=v.tax_class,
                stock=v.stock,
                position=i,
            )
        )
    await _flush_unique(session, "a variant SKU already exists")
    await refresh_price_bounds(session, product_ids=[product.id])
    await session.refresh(product)
    await changes.record(session, entity=changes.PRODUCT, entity_id=product.id)
    return await _view(session, product)


async def update_product(session: AsyncSession, *, ref: str, data: s.ProductUpdate) -> ProductView:
    """Change a product's title, description, images, brand or category."""
    product = await _product(session, ref, for_update=True)
    if data.title is not None:
        product.title = data.title
    if data.description is not None:
        product.description = data.description
    if data.image_urls is not None:
        product.image_urls = [str(u) for u in data.image_urls]
    if "brand" in data.model_fields_set:
        product.brand_id = (await _brand_by_slug(session, data.brand)).id if data.brand else None
    if data.category is not None:
        product.category_id = (await _category_by_slug(session, data.category)).id
    await session.flush()
    await changes.record(session, entity=changes.PRODUCT, entity_id=product.id)
    return await _view(session, product)


async def set_published(session: AsyncSession, *, ref: str, published: bool) -> ProductView:
    """Publish (needs an active variant, 409 otherwise) or unpublish a product."""
    product = await _product(session, ref, for_update=True)
    if published and not product.is_published:
        has_variant = await session.scalar(
            select(exists().where(Variant.product_id == product.id, Variant.is_active))
        )
        if not has_variant:
            raise Conflict("a product needs at least one active variant to be published")
        product.published_at = utcnow()
    product.is_published = published
    await session.flush()
    # Unpublishing is a deletion as far as shoppers' devices are concerned.
    await changes.record(session, entity=changes.PRODUCT, entity_id=product.id, deleted=not published)
    return await _view(session, product)


async def delete_product(session: AsyncSession, *, ref: str) -> None:
    """Delete a product and its variants; 409 when anything still refers to them.

    An ordered product is kept for order history: the order lines' RESTRICT foreign key on
    the variants refuses the cascaded delete (SQLSTATE 23001), so the catalog needs no import
    of the orders that depend on it."""
    product = await _product(session, ref, for_update=True)
    await session.delete(product)
    try:
        await session.flush()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) in _STILL_REFERENCED:
            raise Conflict(
                "this product has been ordered and is kept for order history; unpublish it instead"
            ) from None
        raise
    await changes.record(session, entity=changes.PRODUCT, entity_id=product.id, deleted=True)


async def add_variant(session: AsyncSession, *, ref: str, data: s.VariantCreate) -> ProductView:
    """Add a variant to a product; 409 when the SKU exists."""
    product = await _product(session, ref, for_update=True)
    if await _sku_taken(session, [data.sku]):
        raise Conflict(f"SKU already exists: {data.sku}", extra={"skus": [data.sku]})
    count = await session.scalar(select(func.count()).where(Variant.product_id == product.id)) or 0
    session.add(
        Variant(
            product_id=product.id,
            sku=data.sku,
            attributes=data.attributes,
            price_paise=data.price_paise,
            mrp_paise=data.mrp_paise,
            tax_class=data.tax_class,
            stock=data.stock,
            position=count,
        )
    )
    await _flush_unique(session, f"SKU already exists: {data.sku}")
    await refresh_price_bounds(session, product_ids=[product.id])
    await changes.record(session, entity=changes.PRODUCT, entity_id=product.id)
    return await _view(session, product)


async def _variant_for_update(session: AsyncSession, sku: str) -> Variant:
    variant = await session.scalar(select(Variant).where(Variant.sku == sku).with_for_update())
    if variant is None:
        raise NotFound(f"no variant with SKU {sku!r}")
    return variant


async def update_variant(session: AsyncSession, *, sku: str, data: s.VariantUpdate) -> ProductView:
    """Change a variant's attributes, price, MRP, tax class or active flag (price at most MRP)."""
    variant = await _variant_for_update(session, sku)
    for field in ("attributes", "price_paise", "mrp_paise", "tax_class", "is_active"):
        value = getattr(data, field)
        if value is not None:
            setattr(variant, field, value)
    if variant.price_paise > variant.mrp_paise:
        raise InvalidInput(
            "price_paise must not exceed mrp_paise (selling above MRP is not allowed)",
            extra={"price_paise": variant.price_paise, "mrp_paise": variant.mrp_paise},
        )
    await session.flush()
    await refresh_price_bounds(session, product_ids=[variant.product_id])
    await changes.record(session, entity=changes.PRODUCT, entity_id=variant.product_id)
    product = await session.get(Product, variant.product_id)
    assert product is not None
    await session.refresh(product)
    return await _view(session, product)


async def adjust_stock(session: AsyncSession, *, sku: str, delta: int) -> Variant:
    """Add or remove units atomically; refuses to go below zero."""
    result = await session.execute(
        update(Variant)
        .where(Variant.sku == sku, Variant.stock + delta >= 0)
        .values(stock=Variant.stock + delta)
        .returning(Variant.id)
        .execution_options(synchronize_session=False)
    )
    if result.scalar() is None:
        variant = await session.scalar(select(Variant).where(Variant.sku == sku))
        if variant is None:
            raise NotFound(f"no variant with SKU {sku!r}")
        raise Conflict(
            f"cannot remove {-delta} units of {sku}: only {variant.stock} in stock",
            extra={"sku": sku, "stock": variant.stock},
        )
    variant = await session.scalar(
        select(Variant).where(Variant.sku == sku).execution_options(populate_existing=True)
    )
    assert variant is not None
    await changes.record(session, entity=changes.PRODUCT, entity_id=variant.product_id)
    return variant


async def variants_by_sku(session: AsyncSession, *, skus: Sequence[str]) -> dict[str, Variant]:
    """The variants with these SKUs, by SKU (unknown SKUs are simply absent)."""
    rows = (await session.scalars(select(Variant).where(Variant.sku.in_(skus)))).all()
    return {v.sku: v for v in rows}


def sellable_condition() -> ColumnElement[bool]:
    """A variant may be bought: it is active and its product is published."""
    return and_(Variant.is_active, Product.is_published)
