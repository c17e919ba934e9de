"""notify the page caches of committed search changes

Revision ID: c0ffee000046
Revises: c0ffee000045
Create Date: 2026-12-03 17:40:00

Search answers are cached per process like the catalog listing (`kirana.api.search.router`)
and emptied by the same `kirana_catalog` notification, through the function of c0ffee000002.
The catalog tables already send it, and `search_refresh` only rewrites documents in the
transaction of a catalog write that notified. What else a search shows:
- popularity, which the search job rewrites without touching the catalog: a row trigger whose
  `WHEN` clause the executor checks in C, so a job run that moves no figure (and a refresh, which
  keeps the stored figure) queues nothing; PostgreSQL folds the identical notifications of the
  moved rows into one at commit;
- a TRUNCATE of the documents (a full rebuild by hand);
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
        "search_documents_notify_popularity",
        "AFTER UPDATE ON search_documents FOR EACH ROW WHEN (OLD.popularity IS DISTINCT FROM NEW.popularity)",
    ),
    ("search_documents_notify_truncate", "AFTER TRUNCATE ON search_documents FOR EACH STATEMENT"),
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
