"""suggestions notify the page caches, and their rebuild writes only what changed

Revision ID: c0ffee000047
Revises: c0ffee000046
Create Date: 2026-12-03 22:10:00

Suggestions (`GET /v1/search/suggest`) are cached per process like search answers, and must be
emptied when `search_terms` changes. Two sources change it: catalog writes (new titles, through
`search_refresh`, which also notify from the catalog tables) and the search job's weight
rebuild, which ran `DELETE` then `INSERT` of the whole table every few minutes. A notification
per run would empty every suggestion cache whether or not a weight moved, so:

- `search_rebuild_terms()` now writes the difference in one statement: it deletes the keys no
  title, brand or category has any more, inserts new ones, and updates a weight only where it
  moved (a plain UPDATE and an INSERT of absent keys, not `ON CONFLICT DO UPDATE`, which would
  lock every existing row). A run over an unchanged shop writes and locks no row;
- row triggers notify `kirana_catalog` with the table's name (`kirana_notify_catalog()` of
  c0ffee000002) for each inserted or deleted row and each update whose values changed (checked
  in C by `WHEN`), and a statement trigger on TRUNCATE. PostgreSQL folds a transaction's
  identical notifications into one at commit. `catalog.invalidation` empties only the suggestion
  cache for this payload, since listings and search answers do not read the table.
"""

from __future__ import annotations

from alembic import op

revision = "c0ffee000047"
down_revision = "c0ffee000046"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {}

TRIGGERS = (
    ("search_terms_notify_row", "AFTER INSERT OR DELETE ON search_terms FOR EACH ROW"),
    (
        "search_terms_notify_update",
        "AFTER UPDATE ON search_terms FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)",
    ),
    ("search_terms_notify_truncate", "AFTER TRUNCATE ON search_terms FOR EACH STATEMENT"),
)

# The weights of c0ffee000020 (a title weighs its products plus what they sold, a brand and a
# category the sum of theirs), written as a difference.
REBUILD_TERMS = r"""
CREATE OR REPLACE FUNCTION search_rebuild_terms() RETURNS void
LANGUAGE sql AS $$
  WITH fresh AS MATERIALIZED (
    SELECT array_to_string(t.words[i:], ' ') AS key, t.term, t.kind, max(t.weight)::float8 AS weight
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
     GROUP BY 1, 2, 3
  ), gone AS (
    DELETE FROM search_terms s
     WHERE NOT EXISTS (SELECT 1 FROM fresh f WHERE f.key = s.key AND f.term = s.term AND f.kind = s.kind)
  ), moved AS (
    UPDATE search_terms s SET weight = f.weight
      FROM fresh f
     WHERE f.key = s.key AND f.term = s.term AND f.kind = s.kind AND s.weight IS DISTINCT FROM f.weight
  )
  INSERT INTO search_terms (key, term, kind, weight)
  SELECT f.key, f.term, f.kind, f.weight FROM fresh f
   WHERE NOT EXISTS (SELECT 1 FROM search_terms s WHERE s.key = f.key AND s.term = f.term AND s.kind = f.kind)
  ON CONFLICT DO NOTHING;  -- a key a catalog write added meanwhile
$$;
"""


def upgrade() -> None:
    op.execute(REBUILD_TERMS)
    for name, when in TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION kirana_notify_catalog()")


def downgrade() -> None:
    for name, _when in reversed(TRIGGERS):
        op.execute(f"DROP TRIGGER {name} ON search_terms")
    op.execute(_previous_rebuild().replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))


def _previous_rebuild() -> str:
    """c0ffee000020's REBUILD_TERMS, read from its module (revision files are not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("2026_12_01_c0ffee000020_search_documents_words_synonyms.py")
    spec = importlib.util.spec_from_file_location("search_c0ffee000020", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.REBUILD_TERMS)
