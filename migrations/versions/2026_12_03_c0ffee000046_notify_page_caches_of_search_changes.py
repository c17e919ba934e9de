"""notify the page caches of committed search changes

Revision ID: c0ffee000046
Revises: c0ffee000045
Create Date: 2026-12-03 17:40:00

Search answers are cached per process like the catalog listing (`kirana.api.search.router`)
and emptied by the same `kirana_catalog` notification. The catalog tables already send it
(c0ffee000002); what a search shows also depends on the search documents, which the
popularity job rewrites without touching the catalog, and on the staff-maintained synonym
groups. Both tables now notify on any statement, through the function of c0ffee000002, in the
writing transaction (PostgreSQL folds identical notifications of one transaction into one).
A statement trigger queues one event per statement, whatever the rows, so the order path
(a stock crossing zero refreshes one document) pays for one `pg_notify`. CREATE TRIGGER takes
a brief SHARE ROW EXCLUSIVE lock and scans nothing.
"""

from __future__ import annotations

from alembic import op

revision = "c0ffee000046"
down_revision = "c0ffee000045"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {}

TABLES = ("search_documents", "search_synonyms")


def upgrade() -> None:
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION kirana_notify_catalog()"
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TRIGGER {table}_notify ON {table}")
