"""search: documents kept by triggers, known words, suggestions, synonyms

Revision ID: c0ffee000020
Revises: c0ffee000013
Create Date: 2026-12-01 22:40:00

`search_documents` holds one row per published product: weighted tsvectors over folded text
(see `search_fold`), the facet values and the sort keys. Statement-level triggers with
transition tables on products, variants, brands and categories refresh the rows a statement
touched, in that statement's transaction, so a product is findable the moment its publishing
commits and gone the moment it is unpublished; a stock update refreshes only when a variant
crosses zero. `search_words` is the vocabulary typo tolerance and "did you mean" search with
trigrams; `search_terms` holds suggestion keys (every word-suffix of a title, brand and
category name). `search_synonyms` is the staff-maintained synonym table, seeded with common
Hindi/Hinglish grocery words and their Devanagari spellings. New tables only; the triggers
take a brief lock on the catalog tables and scan nothing; c0ffee000021 fills the documents in
batches and moves the variant update trigger and popularity off the order path.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "c0ffee000020"
down_revision = "c0ffee000013"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {
    "index-not-concurrent": "indexes of tables this revision creates, empty until it fills them",
}

SEED_SYNONYMS: list[list[str]] = [
    ["atta", "aata", "wheat flour", "आटा"],
    ["chawal", "rice", "चावल"],
    ["doodh", "dudh", "milk", "दूध"],
    ["dal", "daal", "lentils", "lentil", "dhal", "दाल"],
    ["haldi", "turmeric", "हल्दी"],
    ["jeera", "zeera", "cumin", "जीरा"],
    ["cheeni", "chini", "sugar", "चीनी"],
    ["besan", "gram flour", "बेसन"],
    ["chai", "tea", "चाय"],
    ["namak", "salt", "नमक"],
    ["ghee", "clarified butter", "घी"],
    ["tel", "oil", "तेल"],
    ["mirch", "chilli", "chili", "मिर्च"],
    ["dhania", "coriander", "धनिया"],
    ["rajma", "kidney beans", "राजमा"],
    ["chana", "chickpeas", "chole", "चना"],
    ["sarson", "mustard", "सरसों"],
    ["paneer", "cottage cheese", "पनीर"],
    ["masala", "spice mix", "मसाला"],
    ["elaichi", "cardamom", "इलायची"],
    ["moong", "mung", "green gram", "मूंग"],
    ["toor", "arhar", "tur", "pigeon peas", "तूर", "अरहर"],
    ["urad", "black gram", "उड़द"],
    ["masoor", "red lentils", "मसूर"],
    ["sabun", "soap", "साबुन"],
    ["makhana", "fox nuts", "मखाना"],
    ["kurta", "कुर्ता"],
    ["saree", "sari", "साड़ी"],
    ["nariyal", "coconut", "नारियल"],
    ["mungfali", "groundnut", "peanut", "मूंगफली"],
]

# Hinglish folding: lower case, no accents, ee->i, oo->u, z->j, w->v, ph->f, doubled letters
# once, a trailing s of a word of four or more letters dropped. Applied to documents and to
# queries alike, so daal/dal, aata/atta, zeera/jeera and dudh/doodh meet.
FOLD = r"""
CREATE FUNCTION search_fold(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT regexp_replace(
           regexp_replace(
             translate(
               replace(replace(replace(lower(public.unaccent('public.unaccent'::regdictionary, t)),
                 'ee', 'i'), 'oo', 'u'), 'ph', 'f'),
               'zw', 'jv'),
             '([a-z])\1+', '\1', 'g'),
           '([a-z]{3,})s(\W|$)', '\1\2', 'g')
$$;
"""

REFRESH = r"""
CREATE FUNCTION search_refresh(ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM search_documents d
   WHERE d.product_id = ANY(ids)
     AND NOT EXISTS (SELECT 1 FROM catalog_products p WHERE p.id = d.product_id AND p.is_published);
  INSERT INTO search_documents AS s (
      product_id, doc, doc_all, title, brand_slug, brand_name, categories, attrs, skus,
      in_stock, price_paise, discount_pct, published_at, popularity)
  SELECT p.id,
         setweight(to_tsvector('simple', search_fold(p.title)), 'A')
           || setweight(to_tsvector('simple', search_fold(coalesce(b.name, ''))), 'B')
           || setweight(to_tsvector('simple', search_fold(cat.names)), 'C')
           || setweight(to_tsvector('simple', search_fold(array_to_string(v.values, ' '))), 'D'),
         setweight(to_tsvector('simple', search_fold(p.title)), 'A')
           || setweight(to_tsvector('simple', search_fold(coalesce(b.name, ''))), 'B')
           || setweight(to_tsvector('simple', search_fold(cat.names)), 'C')
           || setweight(to_tsvector('simple', search_fold(
                array_to_string(v.values, ' ') || ' ' || p.description)), 'D'),
         p.title, b.slug, b.name, cat.slugs, v.attrs, v.skus, v.in_stock,
         p.min_price_paise,
         CASE WHEN p.min_price_mrp_paise > 0
              THEN ((p.min_price_mrp_paise - p.min_price_paise) * 100 / p.min_price_mrp_paise)::int
              ELSE 0 END,
         coalesce(p.published_at, p.created_at),
         coalesce((SELECT sum(l.quantity) FROM order_lines l
                    WHERE l.variant_id IN (SELECT id FROM catalog_variants WHERE product_id = p.id)), 0)
    FROM catalog_products p
    JOIN catalog_categories c ON c.id = p.category_id
    LEFT JOIN catalog_brands b ON b.id = p.brand_id
    CROSS JOIN LATERAL (
      SELECT array_agg(a.slug ORDER BY a.path) AS slugs, string_agg(a.name, ' ') AS names
        FROM catalog_categories a WHERE c.path = a.path OR c.path LIKE a.path || '/%') cat
    CROSS JOIN LATERAL (
      SELECT coalesce(array_agg(DISTINCT e.key || ':' || e.value)
                        FILTER (WHERE e.key IS NOT NULL), '{}') AS attrs,
             coalesce(array_agg(DISTINCT e.value) FILTER (WHERE e.key IS NOT NULL), '{}') AS values,
             coalesce(array_agg(DISTINCT upper(x.sku)), '{}') AS skus,
             coalesce(bool_or(x.stock > 0), false) AS in_stock
        FROM catalog_variants x
        LEFT JOIN LATERAL jsonb_each_text(x.attributes) e ON true
       WHERE x.product_id = p.id AND x.is_active) v
   WHERE p.id = ANY(ids) AND p.is_published
  ON CONFLICT (product_id) DO UPDATE SET
      doc = EXCLUDED.doc, doc_all = EXCLUDED.doc_all, title = EXCLUDED.title,
      brand_slug = EXCLUDED.brand_slug, brand_name = EXCLUDED.brand_name,
      categories = EXCLUDED.categories, attrs = EXCLUDED.attrs, skus = EXCLUDED.skus,
      in_stock = EXCLUDED.in_stock, price_paise = EXCLUDED.price_paise,
      discount_pct = EXCLUDED.discount_pct, published_at = EXCLUDED.published_at,
      popularity = EXCLUDED.popularity;
  INSERT INTO search_words (word)
  SELECT DISTINCT w FROM search_documents d, unnest(tsvector_to_array(d.doc)) w
   WHERE d.product_id = ANY(ids)
  ON CONFLICT DO NOTHING;
  INSERT INTO search_terms (key, term, kind, weight)
  SELECT array_to_string(t.words[i:], ' '), d.title, 'product', 1
    FROM search_documents d
    CROSS JOIN LATERAL (SELECT regexp_split_to_array(search_fold(d.title), '[^a-z0-9\u0900-\u0dff]+') AS words) t
    CROSS JOIN LATERAL generate_subscripts(t.words, 1) i
   WHERE d.product_id = ANY(ids) AND t.words[i] <> ''
  ON CONFLICT DO NOTHING;
END $$;
"""

# Suggestion weights from scratch: a title weighs its products plus what they sold, a brand and a
# category the sum of theirs. Run by `search.service.rebuild_terms` (and below, once).
REBUILD_TERMS = r"""
CREATE FUNCTION search_rebuild_terms() RETURNS void
LANGUAGE sql AS $$
  DELETE FROM search_terms;
  INSERT INTO search_terms (key, term, kind, weight)
  SELECT array_to_string(t.words[i:], ' '), t.term, t.kind, max(t.weight)
    FROM (
      SELECT title AS term, 'product' AS kind, count(*) + sum(popularity) AS weight,
             regexp_split_to_array(search_fold(title), '[^a-z0-9\u0900-\u0dff]+') AS words
        FROM search_documents GROUP BY title
      UNION ALL
      SELECT brand_name, 'brand', count(*) + sum(popularity),
             regexp_split_to_array(search_fold(brand_name), '[^a-z0-9\u0900-\u0dff]+')
        FROM search_documents WHERE brand_name IS NOT NULL GROUP BY brand_name
      UNION ALL
      SELECT c.name, 'category', count(*) + sum(d.popularity),
             regexp_split_to_array(search_fold(c.name), '[^a-z0-9\u0900-\u0dff]+')
        FROM search_documents d JOIN catalog_categories c ON c.slug = ANY(d.categories)
       GROUP BY c.name
    ) t
    CROSS JOIN LATERAL generate_subscripts(t.words, 1) i
   WHERE t.words[i] <> ''
   GROUP BY 1, 2, 3;
$$;
"""

VARIANT_CHANGED = (
    "(o.stock > 0) IS DISTINCT FROM (n.stock > 0)"
    " OR o.price_paise IS DISTINCT FROM n.price_paise"
    " OR o.mrp_paise IS DISTINCT FROM n.mrp_paise"
    " OR o.is_active IS DISTINCT FROM n.is_active"
    " OR o.attributes IS DISTINCT FROM n.attributes"
    " OR o.sku IS DISTINCT FROM n.sku"
    " OR o.product_id IS DISTINCT FROM n.product_id"
)

TRIGGER_FUNCTIONS = {
    "search_products_changed": "PERFORM search_refresh(ARRAY(SELECT id FROM new_rows));",
    "search_variants_added": "PERFORM search_refresh(ARRAY(SELECT DISTINCT product_id FROM new_rows));",
    "search_variants_removed": "PERFORM search_refresh(ARRAY(SELECT DISTINCT product_id FROM old_rows));",
    "search_variants_changed": (
        "PERFORM search_refresh(ARRAY(SELECT DISTINCT unnest(ARRAY[o.product_id, n.product_id]) "
        f"FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {VARIANT_CHANGED}));"
    ),
    "search_brands_changed": (
        "PERFORM search_refresh(ARRAY(SELECT p.id FROM catalog_products p JOIN new_rows n "
        "ON p.brand_id = n.id JOIN old_rows o ON o.id = n.id WHERE o.name IS DISTINCT FROM n.name "
        "OR o.slug IS DISTINCT FROM n.slug));"
    ),
    "search_categories_changed": (
        "PERFORM search_refresh(ARRAY(SELECT p.id FROM catalog_products p "
        "JOIN catalog_categories c ON c.id = p.category_id JOIN new_rows n "
        "ON c.path = n.path OR c.path LIKE n.path || '/%' JOIN old_rows o ON o.id = n.id "
        "WHERE o.name IS DISTINCT FROM n.name OR o.path IS DISTINCT FROM n.path));"
    ),
}

# (trigger, table, event, function, transition tables)
TRIGGERS = [
    ("search_products_ins", "catalog_products", "INSERT", "search_products_changed", "NEW TABLE AS new_rows"),
    ("search_products_upd", "catalog_products", "UPDATE", "search_products_changed", "NEW TABLE AS new_rows"),
    ("search_variants_ins", "catalog_variants", "INSERT", "search_variants_added", "NEW TABLE AS new_rows"),
    ("search_variants_del", "catalog_variants", "DELETE", "search_variants_removed", "OLD TABLE AS old_rows"),
    (
        "search_variants_upd",
        "catalog_variants",
        "UPDATE",
        "search_variants_changed",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    ),
    (
        "search_brands_upd",
        "catalog_brands",
        "UPDATE",
        "search_brands_changed",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    ),
    (
        "search_categories_upd",
        "catalog_categories",
        "UPDATE",
        "search_categories_changed",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    ),
]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS fuzzystrmatch")
    op.execute(FOLD)
    op.create_table(
        "search_documents",
        sa.Column(
            "product_id",
            sa.Uuid(),
            sa.ForeignKey("catalog_products.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("doc", pg.TSVECTOR(), nullable=False),
        sa.Column("doc_all", pg.TSVECTOR(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("brand_slug", sa.String(120), nullable=True),
        sa.Column("brand_name", sa.String(200), nullable=True),
        sa.Column("categories", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("attrs", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("skus", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("in_stock", sa.Boolean(), nullable=False),
        sa.Column("price_paise", sa.BigInteger(), nullable=False),
        sa.Column("discount_pct", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("popularity", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_search_documents_doc_all", "search_documents", ["doc_all"], postgresql_using="gin")
    op.create_index(
        "ix_search_documents_categories", "search_documents", ["categories"], postgresql_using="gin"
    )
    op.create_index("ix_search_documents_skus", "search_documents", ["skus"], postgresql_using="gin")
    op.create_index("ix_search_documents_brand", "search_documents", ["brand_slug"])
    op.create_table("search_words", sa.Column("word", sa.Text(), primary_key=True))
    op.create_index(
        "ix_search_words_trgm",
        "search_words",
        ["word"],
        postgresql_using="gist",
        postgresql_ops={"word": "gist_trgm_ops"},
    )
    op.create_index(
        "ix_search_words_prefix", "search_words", ["word"], postgresql_ops={"word": "text_pattern_ops"}
    )
    op.create_table(
        "search_terms",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("term", sa.Text(), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("weight", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_search_terms_prefix", "search_terms", ["key"], postgresql_ops={"key": "text_pattern_ops"}
    )
    op.create_table(
        "search_synonyms",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("terms", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("folded", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_search_synonyms_folded", "search_synonyms", ["folded"], postgresql_using="gin")
    op.execute(REFRESH)
    op.execute(REBUILD_TERMS)
    for name, body in TRIGGER_FUNCTIONS.items():
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {body} RETURN NULL; END $$"
        )
    for trigger, table, event, function, transitions in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {trigger} AFTER {event} ON {table} REFERENCING {transitions} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    for terms in SEED_SYNONYMS:
        assert all("'" not in t for t in terms)
        array = "ARRAY[" + ", ".join(f"'{t}'" for t in terms) + "]"
        op.execute(
            "INSERT INTO search_synonyms (id, terms, folded) "
            f"SELECT gen_random_uuid(), {array}, ARRAY(SELECT search_fold(x) FROM unnest({array}) x)"
        )
    # The first fill is c0ffee000021's, in batches outside this revision's locks.


def downgrade() -> None:
    for trigger, table, *_ in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    for name in TRIGGER_FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.execute("DROP FUNCTION IF EXISTS search_rebuild_terms()")
    op.execute("DROP FUNCTION IF EXISTS search_refresh(uuid[])")
    op.drop_table("search_synonyms")
    op.drop_table("search_terms")
    op.drop_table("search_words")
    op.drop_table("search_documents")
    op.execute("DROP FUNCTION IF EXISTS search_fold(text)")
