"""HTTP routes of search: `GET /v1/search` (ranked products with facet counts),
`GET /v1/search/suggest` (completions from the first character) and the staff synonym groups
under `/v1/search/synonyms` (permission `search:synonyms`, every change audited).

Search answers and suggestions are public (no draft, nothing per user), so each process keeps
them in page caches (one each) by exact query string, as the catalog listing does
(`catalog.listing_cache`, the search counterpart of Typesense's `use_cache`), but kept exact:
PostgreSQL notifies every process when a committed change touches the catalog, the search
documents (popularity included), the synonym groups or the suggestion keys, and the caches
empty themselves (`catalog.invalidation`). `catalog.edge` answers hits before routing. Answers
carry a strong ETag; If-None-Match gets 304.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from kirana.api import errors
from kirana.api.access.deps import Public, Require
from kirana.api.access.principal import Principal
from kirana.api.audit.deps import AuditCtx
from kirana.api.catalog.edge import cache_key
from kirana.api.catalog.listing_cache import ListingCache
from kirana.api.conditional import IfNoneMatch, etag, etag_response
from kirana.api.contract.document import conditional, raising
from kirana.api.db.engine import Database
from kirana.api.deps import DatabaseDep, SessionDep
from kirana.api.errors import InvalidInput
from kirana.api.search import query as sq
from kirana.api.search import schemas as s
from kirana.api.search import service as search

router = APIRouter(prefix="/v1/search", tags=["search"], responses=raising(errors.InvalidInput))
PATH = "/v1/search"
SUGGEST_PATH = "/v1/search/suggest"


async def search_cache(request: Request) -> ListingCache:
    """This process's search page cache (made by `create_app`, kept exact by
    `catalog.invalidation`)."""
    cache: ListingCache = request.app.state.search_cache
    return cache


SearchCacheDep = Annotated[ListingCache, Depends(search_cache)]


async def suggest_cache(request: Request) -> ListingCache:
    """This process's suggestion page cache (made by `create_app`; the search job's weight
    rebuild empties only this one)."""
    cache: ListingCache = request.app.state.suggest_cache
    return cache


SuggestCacheDep = Annotated[ListingCache, Depends(suggest_cache)]

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_BAD_INPUT: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid query, filter or cursor", **_PROBLEM}
}
_STAFF: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not signed in", **_PROBLEM},
    403: {"description": "Lacks search:synonyms", **_PROBLEM},
}

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such group", **_PROBLEM}}


async def _cached(
    request: Request,
    db: Database,
    cache: ListingCache,
    if_none_match: str | None,
    read: Callable[[AsyncConnection], Awaitable[BaseModel]],
    *,
    transaction: bool = False,
) -> Response:
    """The page `read` gives, from `cache` by exact query string (computed once per change);
    `read` runs in a read-only transaction when it asks for one (`transaction`)."""

    async def compute() -> tuple[bytes, str]:
        async with db.read_only() if transaction else db.autocommit() as conn:
            page = await read(conn)
        body = page.model_dump_json().encode()
        return body, etag(body)

    cached = await cache.get(cache_key(request.scope), compute)
    return etag_response(if_none_match, cached.body, tag=cached.etag)


def _no_nul(values: list[str]) -> tuple[str, ...]:
    """PostgreSQL text cannot hold NUL; no slug has one, so such a value matches nothing."""
    return tuple(v.replace("\x00", "") for v in values)


def _attributes(values: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out: dict[str, list[str]] = {}
    for raw in values:
        name, sep, value = raw.partition(":")
        if not sep or not name or not value:
            raise InvalidInput(f"attr must look like name:value (got {raw[:80]!r})")
        out.setdefault(name.replace("\x00", ""), []).append(value.replace("\x00", ""))
    return tuple((k, tuple(v)) for k, v in out.items())


@router.get("", response_model=s.SearchPage, dependencies=[Public], responses=_BAD_INPUT | conditional())
async def search_products(
    request: Request,
    db: DatabaseDep,
    cache: SearchCacheDep,
    q: Annotated[str, Query(max_length=sq.MAX_QUERY_CHARS)] = "",
    category: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006 - FastAPI copies defaults
    brand: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    min_price_paise: Annotated[int | None, Query(ge=0, lt=2**63)] = None,
    max_price_paise: Annotated[int | None, Query(ge=0, lt=2**63)] = None,
    attr: Annotated[list[str], Query(max_length=20, description="name:value, repeatable")] = [],  # noqa: B006
    in_stock: bool | None = None,
    sort: s.Sort = s.Sort.relevance,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 24,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Published products matching `q` (typos, synonyms and Hinglish spellings forgiven), with
    facet counts; each facet is counted with the other facets' selections applied."""
    req = search.Request(
        q=q,
        filters=search.Filters(
            categories=_no_nul(category),
            brands=_no_nul(brand),
            min_price=min_price_paise,
            max_price=max_price_paise,
            attributes=_attributes(attr),
            in_stock=in_stock,
        ),
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    return await _cached(
        request, db, cache, if_none_match, lambda conn: search.search(conn, req), transaction=True
    )


@router.get(
    "/suggest", response_model=s.SuggestPage, dependencies=[Public], responses=_BAD_INPUT | conditional()
)
async def suggest(
    request: Request,
    db: DatabaseDep,
    cache: SuggestCacheDep,
    q: Annotated[str, Query(max_length=sq.MAX_QUERY_CHARS)] = "",
    limit: Annotated[int, Query(ge=1, le=20)] = 8,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Product titles, brands and categories with a word starting with `q`, most popular first."""
    return await _cached(request, db, cache, if_none_match, lambda conn: search.suggest(conn, q, limit=limit))


Staff = Annotated[Principal, Require("search:synonyms")]


async def _synonym_writer(principal: Staff, cache: SearchCacheDep) -> AsyncIterator[Principal]:
    """A staff member with `search:synonyms`. Around the change, this process's search cache is
    emptied before it and again after it (other processes hear of it from the table's trigger)."""
    cache.invalidate()
    yield principal
    cache.invalidate()


SynonymWrite = Annotated[Principal, Depends(_synonym_writer)]


@router.get("/synonyms", response_model=list[s.SynonymRead], responses=_STAFF)
async def list_synonyms(session: SessionDep, _: Staff) -> list[s.SynonymRead]:
    """Every synonym group."""
    return await search.list_synonyms(session)


@router.post("/synonyms", response_model=s.SynonymRead, status_code=201, responses=_STAFF | _BAD_INPUT)
async def create_synonym(
    body: s.SynonymWrite, session: SessionDep, ctx: AuditCtx, me: SynonymWrite
) -> s.SynonymRead:
    """A new group of equivalent terms; searches use it at once."""
    return await search.create_synonym(session, ctx.as_actor(me.user_id), data=body)


@router.put(
    "/synonyms/{synonym_id}",
    response_model=s.SynonymRead,
    responses=_STAFF | _BAD_INPUT | _NOT_FOUND,
)
async def update_synonym(
    synonym_id: uuid.UUID, body: s.SynonymWrite, session: SessionDep, ctx: AuditCtx, me: SynonymWrite
) -> s.SynonymRead:
    """Replace a group's terms."""
    return await search.update_synonym(session, ctx.as_actor(me.user_id), synonym_id=synonym_id, data=body)


@router.delete(
    "/synonyms/{synonym_id}",
    status_code=204,
    responses=_STAFF | _NOT_FOUND,
)
async def delete_synonym(
    synonym_id: uuid.UUID, session: SessionDep, ctx: AuditCtx, me: SynonymWrite
) -> Response:
    """Remove a group."""
    await search.delete_synonym(session, ctx.as_actor(me.user_id), synonym_id=synonym_id)
    return Response(status_code=204)
