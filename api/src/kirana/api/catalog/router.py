"""HTTP routes of the catalog: the public listing and product pages, and staff CRUD.

Product and listing reads carry a strong ETag over the exact body, so clients revalidate with
If-None-Match and get 304 without the payload. Public listing pages come from a per-process
cache that PostgreSQL notifications keep exact (see `listing_cache`); `catalog.edge` answers
anonymous hits before routing. Staff writes need `catalog:write` and empty this process's
listing cache at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from kirana.api import errors
from kirana.api.access.deps import OptionalUser, Public, Require
from kirana.api.access.principal import Principal
from kirana.api.catalog import listing
from kirana.api.catalog import schemas as s
from kirana.api.catalog import service as catalog
from kirana.api.catalog.edge import cache_key
from kirana.api.catalog.listing_cache import ListingCache
from kirana.api.conditional import IfNoneMatch, etag, etag_response
from kirana.api.contract.document import conditional, created, raising
from kirana.api.deps import DatabaseDep, SessionDep
from kirana.api.errors import InvalidInput
from kirana.api.inputs import Int64, Text

router = APIRouter(
    prefix="/v1/catalog",
    tags=["catalog"],
    responses=raising(errors.NotFound, errors.Conflict, errors.InvalidInput),  # taken slugs, in use
)


async def listing_cache(request: Request) -> ListingCache:
    """This process's listing cache (made by `create_app`, kept fresh by `catalog.invalidation`)."""
    cache: ListingCache = request.app.state.catalog_listing_cache
    return cache


ListingCacheDep = Annotated[ListingCache, Depends(listing_cache)]


async def _catalog_writer(
    principal: Annotated[Principal, Require("catalog:write")], request: Request
) -> AsyncIterator[Principal]:
    """A staff member with `catalog:write`. Around the write, this process's page caches (the
    listing's and search's, `app.state.page_caches`) are emptied before it and again once it
    committed (this exit runs after the response)."""
    caches: tuple[ListingCache, ...] = request.app.state.page_caches
    for cache in caches:
        cache.invalidate()
    yield principal
    for cache in caches:
        cache.invalidate()


CatalogWrite = Annotated[Principal, Depends(_catalog_writer)]


def _attributes(values: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for raw in values:
        name, sep, value = raw.partition(":")
        if not sep or not name or not value:
            raise InvalidInput(f"attr must look like name:value (got {raw!r})")
        out.setdefault(name, []).append(value)
    return out


@router.get("/products", response_model=s.ProductPage, responses=conditional())
async def list_products(
    request: Request,
    db: DatabaseDep,
    cache: ListingCacheDep,
    principal: OptionalUser,
    category: Annotated[Text | None, Query(max_length=120)] = None,
    brand: Annotated[list[Text], Query(max_length=20)] = [],  # noqa: B006 - FastAPI copies defaults
    min_price_paise: Annotated[Int64 | None, Query(ge=0)] = None,
    max_price_paise: Annotated[Int64 | None, Query(ge=0)] = None,
    attr: Annotated[list[Text], Query(max_length=20, description="name:value, repeatable")] = [],  # noqa: B006
    in_stock: bool | None = None,
    q: Annotated[Text | None, Query(min_length=1, max_length=100)] = None,
    sort: s.Sort = s.Sort.newest,
    limit: Annotated[Int64, Query(ge=1, le=100)] = 24,
    cursor: Annotated[Text | None, Query(max_length=500)] = None,
    include_unpublished: bool = False,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Published products, filtered and sorted, one keyset page at a time (`next_cursor`)."""
    if include_unpublished and not (principal and principal.can("catalog:write")):
        include_unpublished = False  # shoppers simply do not see drafts
    query = s.ProductQuery(
        category=category,
        brands=brand,
        min_price_paise=min_price_paise,
        max_price_paise=max_price_paise,
        attributes=_attributes(attr),
        in_stock=in_stock,
        q=q,
        sort=sort,
        limit=limit,
        cursor=cursor,
        include_unpublished=include_unpublished,
    )

    async def compute() -> tuple[bytes, str]:
        async with db.autocommit() as conn:
            page = await listing.read_listing(conn, query=query)
        body = page.model_dump_json().encode()
        return body, etag(body)

    if "include_unpublished" in request.query_params:  # asked for drafts: never cached (however
        body, tag = await compute()  # spelled, so the edge can never serve such a page to staff)
    else:
        cached = await cache.get(cache_key(request.scope), compute)
        body, tag = cached.body, cached.etag
    return etag_response(if_none_match, body, tag=tag)


@router.get("/products/{ref}", response_model=s.ProductRead, responses=conditional())
async def get_product(
    ref: Text, session: SessionDep, principal: OptionalUser, if_none_match: IfNoneMatch = None
) -> Response:
    """One product (by id or slug) with its variants; ETag / If-None-Match supported."""
    staff = principal is not None and principal.can("catalog:write")
    view = await catalog.get_product(session, ref=ref, include_unpublished=staff)
    body = catalog.render_product(view, include_inactive=staff).model_dump_json().encode()
    return etag_response(if_none_match, body)


@router.get("/categories", response_model=list[s.CategoryNode], dependencies=[Public])
async def categories(session: SessionDep) -> list[s.CategoryNode]:
    """The category tree, ordered by position."""
    return catalog.build_tree(await catalog.list_categories(session))


@router.get("/brands", response_model=list[s.BrandRead], dependencies=[Public])
async def brands(session: SessionDep) -> list[s.BrandRead]:
    """Every brand."""
    return [s.BrandRead.model_validate(b) for b in await catalog.list_brands(session)]


# -- staff --------------------------------------------------------------------------------


@router.post("/brands", status_code=201, response_model=s.BrandRead)
async def create_brand(data: s.BrandCreate, session: SessionDep, _: CatalogWrite) -> s.BrandRead:
    """Create a brand."""
    return s.BrandRead.model_validate(await catalog.create_brand(session, data=data))


@router.patch("/brands/{slug}", response_model=s.BrandRead)
async def update_brand(slug: Text, data: s.BrandUpdate, session: SessionDep, _: CatalogWrite) -> s.BrandRead:
    """Rename a brand."""
    return s.BrandRead.model_validate(await catalog.update_brand(session, slug=slug, data=data))


@router.delete("/brands/{slug}", status_code=204)
async def delete_brand(slug: Text, session: SessionDep, _: CatalogWrite) -> Response:
    """Delete a brand no product uses."""
    await catalog.delete_brand(session, slug=slug)
    return Response(status_code=204)


@router.post("/categories", status_code=201, response_model=s.CategoryRead)
async def create_category(data: s.CategoryCreate, session: SessionDep, _: CatalogWrite) -> s.CategoryRead:
    """Create a category, optionally under a parent."""
    return s.CategoryRead.model_validate(await catalog.create_category(session, data=data))


@router.patch("/categories/{slug}", response_model=s.CategoryRead)
async def update_category(
    slug: Text, data: s.CategoryUpdate, session: SessionDep, _: CatalogWrite
) -> s.CategoryRead:
    """Rename or reorder a category."""
    return s.CategoryRead.model_validate(await catalog.update_category(session, slug=slug, data=data))


@router.delete("/categories/{slug}", status_code=204)
async def delete_category(slug: Text, session: SessionDep, _: CatalogWrite) -> Response:
    """Delete a category no product or child category uses."""
    await catalog.delete_category(session, slug=slug)
    return Response(status_code=204)


@router.post("/products", status_code=201, response_model=s.ProductRead, responses=created())
async def create_product(
    data: s.ProductCreate, response: Response, session: SessionDep, _: CatalogWrite
) -> s.ProductRead:
    """Create a product (a draft until published) with its variants."""
    product = catalog.render_product(await catalog.create_product(session, data=data), include_inactive=True)
    response.headers["Location"] = f"/v1/catalog/products/{product.id}"
    return product


@router.patch("/products/{ref}", response_model=s.ProductRead)
async def update_product(
    ref: Text, data: s.ProductUpdate, session: SessionDep, _: CatalogWrite
) -> s.ProductRead:
    """Change a product's title, description, brand, category or images."""
    return catalog.render_product(
        await catalog.update_product(session, ref=ref, data=data), include_inactive=True
    )


@router.post("/products/{ref}/publish", response_model=s.ProductRead)
async def publish(ref: Text, session: SessionDep, _: CatalogWrite) -> s.ProductRead:
    """Publish a product: shoppers see it at once."""
    return catalog.render_product(
        await catalog.set_published(session, ref=ref, published=True), include_inactive=True
    )


@router.post("/products/{ref}/unpublish", response_model=s.ProductRead)
async def unpublish(ref: Text, session: SessionDep, _: CatalogWrite) -> s.ProductRead:
    """Hide a product from shoppers (orders keep their lines)."""
    view = await catalog.set_published(session, ref=ref, published=False)
    return catalog.render_product(view, include_inactive=True)


@router.delete("/products/{ref}", status_code=204)
async def delete_product(ref: Text, session: SessionDep, _: CatalogWrite) -> Response:
    """Delete a product that was never ordered (unpublish it otherwise)."""
    await catalog.delete_product(session, ref=ref)
    return Response(status_code=204)


@router.post("/products/{ref}/variants", status_code=201, response_model=s.ProductRead)
async def add_variant(
    ref: Text, data: s.VariantCreate, session: SessionDep, _: CatalogWrite
) -> s.ProductRead:
    """Add a variant (SKU, price, MRP, tax class, stock) to a product."""
    return catalog.render_product(
        await catalog.add_variant(session, ref=ref, data=data), include_inactive=True
    )


@router.patch("/variants/{sku}", response_model=s.ProductRead)
async def update_variant(
    sku: Text, data: s.VariantUpdate, session: SessionDep, _: CatalogWrite
) -> s.ProductRead:
    """Change a variant's price, MRP, tax class, attributes or active flag."""
    return catalog.render_product(
        await catalog.update_variant(session, sku=sku, data=data), include_inactive=True
    )


@router.post("/variants/{sku}/stock", response_model=s.VariantRead)
async def adjust_stock(sku: Text, data: s.StockAdjust, session: SessionDep, _: CatalogWrite) -> s.VariantRead:
    """Receive goods (positive delta) or write off units (negative); never below zero."""
    v = await catalog.adjust_stock(session, sku=sku, delta=data.delta)
    from kirana.api.catalog import pricing

    return s.VariantRead(
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
