"""notify the page caches of committed search changes

Revision ID: c0ffee000046
Revises: c0ffee000045
Create Date: 2026-12-03 17:40:00

Search answers are cached per process like the catalog listing (`kirana.api.search.router`)
and emptied by the same `kirana_catalog` notification, through the function of c0ffee000002.
The catalog tables send it for most changes, but not all that a search shows (a variant's SKU
changes no listing, yet rewrites the document's `skus`), and the search job rewrites popularity
without touching the catalog. So the documents notify themselves:
- a row whose stored values changed: a row trigger whose `WHEN (OLD.* IS DISTINCT FROM NEW.*)`
  the executor checks in C, so a popularity run that moves no figure, or a refresh that rewrites
  a document as it was, queues nothing; PostgreSQL folds the identical notifications of the
  changed rows into one at commit;
- any INSERT, DELETE or TRUNCATE statement (new, unpublished or rebuilt documents; these come
  from catalog writes or a reindex by hand);
- the staff-maintained synonym groups: any statement (staff writes are rare).
CREATE TRIGGER takes a brief SHARE ROW EXCLUSIVE lock and scans nothing.
"""

from __future__ import annotations

from alembic import op

revision = "c0ffee000046"
down_revision = "c0ffee000045"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {}

TRIGGERS = (
    (
        "search_documents_notify_update",
        "AFTER UPDATE ON search_documents FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)",
    ),
    (
        "search_documents_notify",
        "AFTER INSERT OR DELETE OR TRUNCATE ON search_documents FOR EACH STATEMENT",
    ),
    (
        "search_synonyms_notify",
        "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON search_synonyms FOR EACH STATEMENT",
    ),
)


def upgrade() -> None:
    for name, when in TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION kirana_notify_catalog()")


def downgrade() -> None:
    for name, when in reversed(TRIGGERS):
        table = when.split(" ON ", 1)[1].split()[0]
        op.execute(f"DROP TRIGGER {name} ON {table}")
