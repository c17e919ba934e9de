"""search: triggers off the order path, popularity by a job, the first fill in batches

Revision ID: c0ffee000021
Revises: c0ffee000030
Create Date: 2026-12-02 01:40:00

Three costs of c0ffee000020 fall on writers that have nothing to do with search:
- every stock UPDATE of an order fired a statement trigger that captured old and new rows in
  transition tables and joined them in PL/pgSQL, only to find (nearly always) that no variant
  crossed zero. The update trigger is now a row trigger whose `WHEN` clause the executor
  evaluates in C: a decrement that leaves stock above zero queues nothing at all;
- `search_refresh` summed a product's order lines (its popularity) on every catalog write.
  Popularity is now recomputed by the search job (`search_popularity`, every few minutes, only
  rows that changed are written); a refresh keeps the stored figure;
- the first fill ran in the transaction that created the triggers, holding their locks on the
  catalog for the whole fill. It now runs here, outside a transaction, 1,000 products per
  commit, in key order (a rerun over filled documents only rewrites them).
Replacing functions and one trigger takes a brief lock on `catalog_variants`; nothing scans.
"""

from __future__ import annotations

from alembic import op

revision = "c0ffee000021"
down_revision = "c0ffee000030"
branch_labels = None
depends_on = None

# The refresh of c0ffee000020 with popularity left out of the write and the id list joined
# (`unnest`) instead of probed element by element.
REFRESH = r"""
CREATE OR REPLACE FUNCTION search_refresh(ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM search_documents d
   USING (SELECT DISTINCT unnest(ids) AS id) i
   WHERE d.product_id = i.id
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
         0
    FROM (SELECT DISTINCT unnest(ids) AS id) i
    JOIN catalog_products p ON p.id = i.id
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
   WHERE p.is_published
   ORDER BY p.id  -- rows locked in key order, as search_popularity locks them
  ON CONFLICT (product_id) DO UPDATE SET
      doc = EXCLUDED.doc, doc_all = EXCLUDED.doc_all, title = EXCLUDED.title,
      brand_slug = EXCLUDED.brand_slug, brand_name = EXCLUDED.brand_name,
      categories = EXCLUDED.categories, attrs = EXCLUDED.attrs, skus = EXCLUDED.skus,
      in_stock = EXCLUDED.in_stock, price_paise = EXCLUDED.price_paise,
      discount_pct = EXCLUDED.discount_pct, published_at = EXCLUDED.published_at;
  INSERT INTO search_words (word)
  SELECT DISTINCT w FROM search_documents d
    JOIN (SELECT DISTINCT unnest(ids) AS id) i ON i.id = d.product_id,
         unnest(tsvector_to_array(d.doc)) w
  ON CONFLICT DO NOTHING;
  INSERT INTO search_terms (key, term, kind, weight)
  SELECT DISTINCT array_to_string(t.words[n:], ' '), d.title, 'product', 1
    FROM search_documents d
    JOIN (SELECT DISTINCT unnest(ids) AS id) i ON i.id = d.product_id
    CROSS JOIN LATERAL (SELECT regexp_split_to_array(search_fold(d.title), '[^a-z0-9\u0900-\u0dff]+') AS words) t
    CROSS JOIN LATERAL generate_subscripts(t.words, 1) n
   WHERE t.words[n] <> ''
  ON CONFLICT DO NOTHING;
END $$;
"""

# Units ordered per product, written only where the figure moved, the rows locked in key order
# (as a refresh locks them, so an order that sells a product out waits, never deadlocks). Run by
# the search job in a transaction of its own, before it rebuilds suggestion weights.
POPULARITY = r"""
CREATE FUNCTION search_popularity() RETURNS bigint
LANGUAGE sql AS $$
  WITH sold AS (
    SELECT d.product_id, coalesce(sum(l.quantity), 0) AS units
      FROM search_documents d LEFT JOIN order_lines l ON l.product_id = d.product_id
     GROUP BY d.product_id
  ), locked AS (
    SELECT d.product_id, sold.units
      FROM search_documents d JOIN sold ON sold.product_id = d.product_id
     WHERE d.popularity IS DISTINCT FROM sold.units
     ORDER BY d.product_id
       FOR UPDATE OF d
  ), moved AS (
    UPDATE search_documents d SET popularity = locked.units
      FROM locked
     WHERE d.product_id = locked.product_id
    RETURNING 1
  )
  SELECT count(*) FROM moved;
$$;
"""

# What a variant row must change for its product's document to change: the stock crossing
# zero, a price, its activity, attributes, SKU or product. Evaluated per row by the executor.
VARIANT_CHANGED = (
    "(OLD.stock > 0) IS DISTINCT FROM (NEW.stock > 0)"
    " OR OLD.price_paise IS DISTINCT FROM NEW.price_paise"
    " OR OLD.mrp_paise IS DISTINCT FROM NEW.mrp_paise"
    " OR OLD.is_active IS DISTINCT FROM NEW.is_active"
    " OR OLD.attributes IS DISTINCT FROM NEW.attributes"
    " OR OLD.sku IS DISTINCT FROM NEW.sku"
    " OR OLD.product_id IS DISTINCT FROM NEW.product_id"
)

VARIANT_ROW = r"""
CREATE FUNCTION search_variant_row_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM search_refresh(ARRAY[OLD.product_id, NEW.product_id]);
  RETURN NULL;
END $$;
"""

# c0ffee000020's statement-level update trigger, for the downgrade.
OLD_VARIANT_CHANGED = (
    "(o.stock > 0) IS DISTINCT FROM (n.stock > 0)"
    " OR o.price_paise IS DISTINCT FROM n.price_paise"
    " OR o.mrp_paise IS DISTINCT FROM n.mrp_paise"
    " OR o.is_active IS DISTINCT FROM n.is_active"
    " OR o.attributes IS DISTINCT FROM n.attributes"
    " OR o.sku IS DISTINCT FROM n.sku"
    " OR o.product_id IS DISTINCT FROM n.product_id"
)

FILL = r"""
DO $$
DECLARE
  last uuid := '00000000-0000-0000-0000-000000000000';
  batch uuid[];
BEGIN
  LOOP
    SELECT array_agg(id ORDER BY id) INTO batch
      FROM (SELECT id FROM catalog_products WHERE id > last ORDER BY id LIMIT 1000) s;
    EXIT WHEN batch IS NULL;
    PERFORM search_refresh(batch);
    last := batch[array_upper(batch, 1)];
    COMMIT;
  END LOOP;
END $$;
"""


def upgrade() -> None:
    op.execute(REFRESH)
    op.execute(POPULARITY)
    op.execute(VARIANT_ROW)
    op.execute("DROP TRIGGER search_variants_upd ON catalog_variants")
    op.execute("DROP FUNCTION search_variants_changed()")
    op.execute(
        "CREATE TRIGGER search_variants_upd AFTER UPDATE ON catalog_variants "
        f"FOR EACH ROW WHEN ({VARIANT_CHANGED}) EXECUTE FUNCTION search_variant_row_changed()"
    )
    with op.get_context().autocommit_block():
        op.execute(FILL)
        op.execute("SELECT search_popularity()")
        op.execute("SELECT search_rebuild_terms()")


def downgrade() -> None:
    op.execute("DROP TRIGGER search_variants_upd ON catalog_variants")
    op.execute("DROP FUNCTION search_variant_row_changed()")
    op.execute(
        "CREATE FUNCTION search_variants_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "PERFORM search_refresh(ARRAY(SELECT DISTINCT unnest(ARRAY[o.product_id, n.product_id]) "
        f"FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {OLD_VARIANT_CHANGED})); "
        "RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER search_variants_upd AFTER UPDATE ON catalog_variants "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION search_variants_changed()"
    )
    op.execute("DROP FUNCTION search_popularity()")
    # The refresh goes back to computing popularity as it writes (c0ffee000020's body).
    op.execute(_previous_refresh().replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))


def _previous_refresh() -> str:
    """c0ffee000020's REFRESH, read from its module (revision files are not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("2026_12_01_c0ffee000020_search_documents_words_synonyms.py")
    spec = importlib.util.spec_from_file_location("search_c0ffee000020", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.REFRESH)
