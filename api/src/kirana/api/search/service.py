"""Search reads: ranked products with facet counts in one statement, suggestions, and the
staff-maintained synonym groups (audited). Called by `search.router` and the search benchmark.

A search is two round trips: `expand` looks the folded words up (known words, synonyms, typo
candidates within Meilisearch's allowance), then one statement matches, ranks, pages and counts
every facet over the matches with the other facets' selections applied. The ranking rules are
in `docs/search.md`. No HTTP, no commit.

Longer than 400 lines because the search statement's builder, its facets and its parameters
are one statement and are read together.
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kirana.api import cursors
from kirana.api.audit import service as audit
from kirana.api.errors import InvalidInput, NotFound
from kirana.api.search import query as sq
from kirana.api.search import schemas as s
from kirana.api.search.models import Synonym

# Price facet bucket edges in paise (₹50, ₹100, ₹200, ₹500, ₹1,000, ₹5,000, ₹10,000).
PRICE_EDGES = (0, 5_000, 10_000, 20_000, 50_000, 100_000, 500_000, 1_000_000)


_SKU_DROP = re.compile(r"[^A-Z0-9._/-]+")


@dataclass(frozen=True)
class Filters:
    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    min_price: int | None = None
    max_price: int | None = None
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, accepted values)
    in_stock: bool | None = None


@dataclass(frozen=True)
class Request:
    q: str
    filters: Filters = field(default_factory=Filters)
    sort: s.Sort = s.Sort.relevance
    cursor: str | None = None
    limit: int = 24


_EXPAND = text(
    """
    SELECT u.term, u.f,
           EXISTS (SELECT 1 FROM search_words w WHERE w.word = u.f) AS known,
           EXISTS (SELECT 1 FROM search_words w WHERE u.prefix AND w.word LIKE u.f || '%') AS known_prefix,
           ARRAY(SELECT DISTINCT x FROM search_synonyms y, unnest(y.folded) x
                  WHERE y.folded @> ARRAY[u.f]) AS synonyms,
           ARRAY(SELECT c.word FROM (SELECT word FROM search_words WHERE u.allowed > 0
                                     ORDER BY word <-> u.f LIMIT 10) c
                  WHERE levenshtein(c.word, u.f) BETWEEN 1 AND u.allowed
                  ORDER BY levenshtein(c.word, u.f), c.word LIMIT 4) AS typos
      FROM (SELECT t.term, search_fold(t.term) AS f, t.allowed, t.prefix
              FROM unnest(CAST(:terms AS text[]), CAST(:allowed AS int[]), CAST(:prefix AS bool[]))
                   AS t(term, allowed, prefix)) u
    """
)


async def expand(conn: AsyncConnection | AsyncSession, words: list[str], *, prefix_last: bool) -> sq.Plan:
    """The query plan of the typed words: one statement for every word and adjacent pair."""
    if not words:
        return sq.Plan()
    terms: list[str] = []
    allowed: list[int] = []
    prefix: list[bool] = []
    for i, w in enumerate(words):
        terms.append(w)
        allowed.append(sq.typo_allowance(w))
        prefix.append(prefix_last and i == len(words) - 1)
        if i + 1 < len(words):
            terms.append(f"{w} {words[i + 1]}")
            allowed.append(0)
            prefix.append(False)
    rows = (await conn.execute(_EXPAND, {"terms": terms, "allowed": allowed, "prefix": prefix})).all()
    folded_of = {r.term: r.f for r in rows}
    lookups = {r.f: sq.Lookup(r.known, r.known_prefix, tuple(r.synonyms), tuple(r.typos)) for r in rows}
    folded = [folded_of[w] for w in words if folded_of.get(w)]
    return sq.plan(folded, lookups, last_is_prefix=prefix_last)


@dataclass(frozen=True)
class _Shape:
    q: bool
    sort: s.Sort
    categories: bool
    brands: bool
    min_price: bool
    max_price: bool
    attributes: int
    in_stock: bool | None
    cursor: bool


_SORT_KEY = {
    s.Sort.relevance: ("score", True),
    s.Sort.price_asc: ("price_paise", False),
    s.Sort.price_desc: ("price_paise", True),
    s.Sort.newest: ("published_at", True),
    s.Sort.discount: ("discount_pct", True),
}


@functools.lru_cache(maxsize=256)
def _statement(shape: _Shape) -> Any:
    """The one statement of a search shape. `m` holds the matches, narrow; the page reads `m`
    with every filter applied. Every facet and the total read `g`: the matches grouped by what
    the facets look at (categories, attributes, brand, price bucket, stock), a few thousand rows
    at most whatever the number of matches, each group carrying its filter flags. So the matches
    are aggregated once instead of once per facet, and the counts stay exact."""

    def flags_of(t: str) -> dict[str, str]:
        out = {
            "f_cat": f"{t}.categories && CAST(:categories AS text[])" if shape.categories else "true",
            "f_brand": f"{t}.brand_slug = ANY(CAST(:brands AS text[]))" if shape.brands else "true",
            "f_price": f"{t}.f_price",
            "f_stock": "true"
            if shape.in_stock is None
            else (f"{t}.in_stock" if shape.in_stock else f"NOT {t}.in_stock"),
        }
        for i in range(shape.attributes):
            out[f"f_attr{i}"] = f"{t}.attrs && CAST(:attr_values_{i} AS text[])"
        return out

    price = " AND ".join(
        [
            c
            for c, on in (
                ("d.price_paise >= :min_price", shape.min_price),
                ("d.price_paise <= :max_price", shape.max_price),
            )
            if on
        ]
        or ["true"]
    )
    attr_flags = [f"f_attr{i}" for i in range(shape.attributes)]
    if shape.q:
        score = (
            "(CASE WHEN d.skus @> ARRAY[:sku] THEN 100 ELSE 0 END"
            " + CASE WHEN d.doc @@ q.exact_q THEN 2 ELSE 0 END"
            " + CASE WHEN q.has_phrase AND d.doc @@ q.phrase_q THEN 1 ELSE 0 END"
            " + ts_rank(d.doc, q.full_q) + 0.1 * ts_rank(d.doc_all, q.full_q)"
            " + CASE WHEN d.in_stock THEN 0.3 ELSE 0 END + 0.02 * ln(1 + d.popularity))::float8"
        )
        where = "(d.doc_all @@ q.full_q OR d.skus @> ARRAY[:sku])"
        q_cte = (
            "q AS (SELECT to_tsquery('simple', :full_q) AS full_q,"
            " to_tsquery('simple', :exact_q) AS exact_q,"
            " to_tsquery('simple', :phrase_q) AS phrase_q, :phrase_q <> '' AS has_phrase),"
        )
        from_ = "search_documents d, q"
    else:
        score = "(CASE WHEN d.in_stock THEN 0.3 ELSE 0 END + 0.02 * ln(1 + d.popularity))::float8"
        where = "true"
        q_cte = ""
        from_ = "search_documents d"
    key, desc = _SORT_KEY[shape.sort]
    # Only the sort key the page orders by travels in `m`.
    sort_col = "" if key == "price_paise" else f"{score} AS score" if key == "score" else f"d.{key}"
    page_flags = " AND ".join(flags_of("m").values())
    group_flags = flags_of("g")
    flag_cols = ", ".join(f"{expr} AS {name}" for name, expr in group_flags.items() if name != "f_price")
    all_flags = " AND ".join(group_flags)

    def others(*drop: str) -> str:
        return " AND ".join([f for f in group_flags if f not in drop] or ["true"])

    op = "<" if desc else ">"
    direction = "DESC" if desc else "ASC"
    keyset = f"AND (m.{key}, m.product_id) {op} (:cursor_key, :cursor_id)" if shape.cursor else ""
    attr_exclusion = " AND ".join(
        [others(*attr_flags)]
        + [f"(split_part(a, ':', 1) = :attr_name_{i} OR f_attr{i})" for i in range(shape.attributes)]
    )
    buckets = ", ".join(str(e) for e in PRICE_EDGES)
    sql = f"""
    WITH {q_cte}
    m AS MATERIALIZED (
      SELECT d.product_id, d.brand_slug, d.brand_name, d.categories, d.attrs, d.in_stock,
             d.price_paise, {price} AS f_price{", " + sort_col if sort_col else ""}
        FROM {from_} WHERE {where}
    ),
    page AS (
      SELECT m.* FROM m WHERE {page_flags} {keyset}
       ORDER BY m.{key} {direction}, m.product_id {direction} LIMIT :limit_plus_one
    ),
    g AS MATERIALIZED (
      SELECT g.*, {flag_cols} FROM (
        SELECT categories, attrs, brand_slug, max(brand_name) AS brand_name, in_stock, f_price,
               width_bucket(price_paise, ARRAY[{buckets}]::bigint[]) AS bucket, count(*) AS n
          FROM m GROUP BY categories, attrs, brand_slug, in_stock, f_price, bucket) g
    )
    SELECT
      (SELECT coalesce(sum(n), 0)::bigint FROM g WHERE {all_flags}) AS total,
      (SELECT coalesce(sum(n), 0)::bigint FROM g) AS matched,
      (SELECT coalesce(json_agg(json_build_object(
                'id', p.id, 'slug', p.slug, 'title', p.title, 'brand', page.brand_name,
                'category', page.categories[cardinality(page.categories)],
                'image_url', p.image_urls[1], 'price_paise', page.price_paise,
                'mrp_paise', p.min_price_mrp_paise, 'discount_pct', d.discount_pct,
                'in_stock', page.in_stock, 'published_at', d.published_at,
                'sort_key', page.{key})
              ORDER BY page.{key} {direction}, page.product_id {direction}), '[]')
         FROM page JOIN catalog_products p ON p.id = page.product_id
              JOIN search_documents d ON d.product_id = page.product_id) AS hits,
      (SELECT coalesce(json_agg(json_build_object('slug', c.slug, 'name', c.name,
                'parent', pc.slug, 'count', x.n) ORDER BY c.path), '[]')
         FROM (SELECT cat, sum(n)::bigint AS n FROM g, unnest(g.categories) cat
                WHERE {others("f_cat")} GROUP BY cat) x
         JOIN catalog_categories c ON c.slug = x.cat
         LEFT JOIN catalog_categories pc ON pc.id = c.parent_id) AS categories,
      (SELECT coalesce(json_agg(json_build_object('value', x.brand_slug, 'label', x.brand_name,
                'count', x.n) ORDER BY x.n DESC, x.brand_slug), '[]')
         FROM (SELECT brand_slug, max(brand_name) AS brand_name, sum(n)::bigint AS n FROM g
                WHERE brand_slug IS NOT NULL AND {others("f_brand")}
                GROUP BY brand_slug ORDER BY n DESC, brand_slug LIMIT 30) x) AS brands,
      (SELECT coalesce(json_agg(json_build_object('bucket', x.bucket, 'count', x.n)
                ORDER BY x.bucket), '[]')
         FROM (SELECT bucket, sum(n)::bigint AS n FROM g WHERE {others("f_price")}
                GROUP BY bucket) x) AS prices,
      (SELECT coalesce(json_agg(json_build_object('value', x.a, 'count', x.n)
                ORDER BY x.n DESC, x.a), '[]')
         FROM (SELECT a, sum(n)::bigint AS n FROM g, unnest(g.attrs) a WHERE {attr_exclusion}
                GROUP BY a ORDER BY n DESC, a LIMIT 50) x) AS attributes,
      (SELECT coalesce(json_agg(json_build_object('in_stock', x.in_stock, 'count', x.n)
                ORDER BY x.in_stock DESC), '[]')
         FROM (SELECT in_stock, sum(n)::bigint AS n FROM g WHERE {others("f_stock")}
                GROUP BY 1) x) AS stock
    """
    return text(sql)


_KEY_KINDS: dict[s.Sort, cursors.KeyKind] = {
    s.Sort.relevance: "float",
    s.Sort.newest: "datetime",
    s.Sort.price_asc: "int",
    s.Sort.price_desc: "int",
    s.Sort.discount: "int",
}


def _price_buckets(rows: list[dict[str, Any]]) -> list[s.PriceBucket]:
    out = []
    for r in rows:
        b = int(r["bucket"])  # width_bucket: 1 is [edge0, edge1), len(edges) is past the last
        lo = PRICE_EDGES[b - 1] if b >= 1 else 0
        hi = PRICE_EDGES[b] if b < len(PRICE_EDGES) else None
        out.append(s.PriceBucket(min_paise=lo, max_paise=hi, count=r["count"]))
    return out


# For the rest of the caller's transaction: plan every search statement for its own values (a
# generic plan cached by the driver's prepared statement cannot know the tsquery and the filters,
# and chose sorts and scans that cost up to twice the time), and give the facet grouping room
# to hash rather than sort.
_PLANNER = text(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), set_config('work_mem', '32MB', true)"
)


async def search(conn: AsyncConnection | AsyncSession, req: Request) -> s.SearchPage:
    """One page of ranked matches with facet counts; InvalidInput for a query of no words with no
    category or brand to browse, or a bad cursor. Run it in a transaction (`Database.read_only`)
    so that the planner settings it makes hold for its statements and end with them."""
    if len(req.q) > sq.MAX_QUERY_CHARS:
        raise InvalidInput(f"q is at most {sq.MAX_QUERY_CHARS} characters")
    words = sq.words(req.q)
    f = req.filters
    if not words and not (f.categories or f.brands):
        raise InvalidInput("q needs at least one letter or digit (or choose a category or brand)")
    await conn.execute(_PLANNER)
    plan = await expand(conn, words, prefix_last=True)
    full_q = plan.tsquery()
    if words and not full_q:
        raise InvalidInput("q needs at least one letter or digit")
    page, matched = await _run(conn, req, plan, full_q)
    if words and matched == 0 and len(plan.concepts) > 1:
        # No product has every word (whatever the filters): products with any of them. When
        # the words match but the filters leave nothing, the facets say where the matches are.
        page, matched = await _run(conn, req, plan, plan.tsquery(any_word=True))
    if words and matched == 0:
        page.did_you_mean = await did_you_mean(conn, words)
    return page


async def _run(
    conn: AsyncConnection | AsyncSession, req: Request, plan: sq.Plan, full_q: str
) -> tuple[s.SearchPage, int]:
    """The page, and how many products the words match before any filter."""
    f = req.filters
    shape = _Shape(
        q=bool(full_q),
        sort=req.sort,
        categories=bool(f.categories),
        brands=bool(f.brands),
        min_price=f.min_price is not None,
        max_price=f.max_price is not None,
        attributes=len(f.attributes),
        in_stock=f.in_stock,
        cursor=req.cursor is not None,
    )
    params: dict[str, Any] = {"limit_plus_one": req.limit + 1}
    if full_q:
        params |= {
            "full_q": full_q,
            "exact_q": plan.tsquery(typos=False, prefix=False) or full_q,
            "phrase_q": plan.phrase(),
            "sku": _SKU_DROP.sub("", req.q.strip().upper())[:64],
        }
    if f.categories:
        params["categories"] = list(f.categories)
    if f.brands:
        params["brands"] = list(f.brands)
    if f.min_price is not None:
        params["min_price"] = f.min_price
    if f.max_price is not None:
        params["max_price"] = f.max_price
    for i, (name, values) in enumerate(f.attributes):
        params[f"attr_name_{i}"] = name
        params[f"attr_values_{i}"] = [f"{name}:{v}" for v in values]
    if req.cursor is not None:
        params["cursor_key"], params["cursor_id"] = cursors.decode_keyset(
            req.cursor, req.sort.value, _KEY_KINDS[req.sort]
        )
    row = (await conn.execute(_statement(shape), params)).one()
    hits = row.hits[: req.limit]
    next_cursor = None
    if len(row.hits) > req.limit:
        last = hits[-1]
        next_cursor = cursors.encode_keyset(req.sort.value, last["sort_key"], last["id"])
    page = s.SearchPage(
        items=[s.Hit.model_validate({k: v for k, v in h.items() if k != "sort_key"}) for h in hits],
        total=row.total,
        next_cursor=next_cursor,
        facets=s.Facets(
            categories=[s.CategoryCount.model_validate(c) for c in row.categories],
            brands=[s.ValueCount.model_validate(b) for b in row.brands],
            prices=_price_buckets(row.prices),
            attributes=[
                s.ValueCount(value=a["value"], label=a["value"].partition(":")[2], count=a["count"])
                for a in row.attributes
            ],
            in_stock=[s.StockCount.model_validate(x) for x in row.stock],
        ),
    )
    return page, row.matched


_DID_YOU_MEAN = text(
    """
    SELECT t.ord, (SELECT w.word FROM search_words w WHERE similarity(w.word, search_fold(t.term)) >= 0.3
                   ORDER BY w.word <-> search_fold(t.term) LIMIT 1) AS word
      FROM unnest(CAST(:terms AS text[])) WITH ORDINALITY AS t(term, ord)
    """
)


async def did_you_mean(conn: AsyncConnection | AsyncSession, words: list[str]) -> str | None:
    """The closest known words, when some typed word has a near neighbour; else None."""
    rows = (await conn.execute(_DID_YOU_MEAN, {"terms": words})).all()
    fixed = [r.word or w for r, w in zip(rows, words, strict=True)]
    return " ".join(fixed) if any(r.word for r in rows) else None


_SUGGEST = text(
    """
    SELECT kind, term FROM (
      SELECT DISTINCT ON (kind, term) kind, term, weight
        FROM (SELECT kind, term, weight FROM search_terms WHERE key LIKE :prefix
               ORDER BY weight DESC LIMIT 200) top
       ORDER BY kind, term, weight DESC) x
     ORDER BY weight DESC, term LIMIT :limit
    """
)


async def suggest(conn: AsyncConnection | AsyncSession, q: str, *, limit: int = 8) -> s.SuggestPage:
    """Titles, brands and categories with a word starting with what was typed, most popular first."""
    if len(q) > sq.MAX_QUERY_CHARS:
        raise InvalidInput(f"q is at most {sq.MAX_QUERY_CHARS} characters")
    words = sq.words(q)
    if not words:
        return s.SuggestPage(items=[])
    folded = (await conn.execute(text("SELECT search_fold(:q)"), {"q": " ".join(words)})).scalar_one()
    clean = " ".join(w for w in (sq.lexeme(x) for x in folded.split()) if w).replace("'", "")
    if not clean:
        return s.SuggestPage(items=[])
    rows = (await conn.execute(_SUGGEST, {"prefix": clean + "%", "limit": limit})).all()
    return s.SuggestPage(items=[s.Suggestion(kind=r.kind, text=r.term) for r in rows])


async def refresh_popularity(session: AsyncSession) -> int:
    """Popularity (units ordered per product) brought up to date; returns the documents whose
    figure moved. Catalog writes keep the documents themselves current (triggers); commit soon,
    since the moved documents stay locked until then."""
    return int((await session.execute(text("SELECT search_popularity()"))).scalar_one())


async def rebuild_terms(session: AsyncSession) -> None:
    """Suggestion weights from scratch (titles sold since, products gone); a periodic job."""
    await session.execute(text("SELECT search_rebuild_terms()"))


# ---- synonyms (staff) -------------------------------------------------------------------


def _read(row: Synonym) -> s.SynonymRead:
    return s.SynonymRead(id=row.id, terms=list(row.terms), updated_at=row.updated_at)


async def _folded(session: AsyncSession, terms: list[str]) -> list[str]:
    result = await session.execute(
        text("SELECT ARRAY(SELECT search_fold(x) FROM unnest(CAST(:t AS text[])) x)"), {"t": terms}
    )
    return list(result.scalar_one())


async def list_synonyms(session: AsyncSession) -> list[s.SynonymRead]:
    """Every synonym group, ordered by its first term."""
    rows = await session.scalars(select(Synonym).order_by(Synonym.terms[1], Synonym.id))
    return [_read(row) for row in rows]


async def create_synonym(
    session: AsyncSession, ctx: audit.AuditContext, *, data: s.SynonymWrite
) -> s.SynonymRead:
    """Add a group of equivalent terms (audited); searches use it once the caller commits."""
    row = Synonym(terms=data.terms, folded=await _folded(session, data.terms))
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        ctx,
        action="search.synonym_created",
        target_type="synonym",
        target_id=row.id,
        after={"terms": data.terms},
    )
    return _read(row)


async def update_synonym(
    session: AsyncSession, ctx: audit.AuditContext, *, synonym_id: uuid.UUID, data: s.SynonymWrite
) -> s.SynonymRead:
    """Replace a group's terms (audited with before and after); NotFound if there is none."""
    row = await session.get(Synonym, synonym_id, with_for_update=True)
    if row is None:
        raise NotFound("no such synonym group")
    before = list(row.terms)
    row.terms = data.terms
    row.folded = await _folded(session, data.terms)
    await session.flush()
    await session.refresh(row)
    await audit.record(
        session,
        ctx,
        action="search.synonym_updated",
        target_type="synonym",
        target_id=row.id,
        before={"terms": before},
        after={"terms": data.terms},
    )
    return _read(row)


async def delete_synonym(session: AsyncSession, ctx: audit.AuditContext, *, synonym_id: uuid.UUID) -> None:
    """Remove a group (audited with its terms); NotFound if there is none."""
    row = await session.get(Synonym, synonym_id, with_for_update=True)
    if row is None:
        raise NotFound("no such synonym group")
    before = list(row.terms)
    await session.delete(row)
    await session.flush()
    await audit.record(
        session,
        ctx,
        action="search.synonym_deleted",
        target_type="synonym",
        target_id=synonym_id,
        before={"terms": before},
    )
