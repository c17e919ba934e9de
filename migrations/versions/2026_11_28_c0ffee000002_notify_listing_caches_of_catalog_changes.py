"""notify listing caches of committed catalog changes

Revision ID: c0ffee000002
Revises: c0ffee000001
Create Date: 2026-11-28 04:30:00

Triggers `NOTIFY kirana_catalog` whenever a change alters what a public listing shows, in the
changing transaction itself, so every API process's listing cache hears of it once it commits
(whichever process, job or tool made it). Products, brands and categories notify on any
statement; variants notify when added or removed, and on an update only when the price, MRP,
attributes, owning product or active flag change, or stock crosses zero (the listing shows
`in_stock`, not the count, so ordinary orders stay silent). PostgreSQL folds identical
notifications of one transaction into one. CREATE TRIGGER takes a brief SHARE ROW EXCLUSIVE
lock and scans nothing.
"""

from __future__ import annotations

from alembic import op

revision = "c0ffee000002"
down_revision = "c0ffee000001"
branch_labels = None
depends_on = None

waivers: dict[str, str] = {}

CHANNEL = "kirana_catalog"
WHOLE_TABLES = ("catalog_products", "catalog_brands", "catalog_categories")
VARIANT_CHANGED = (
    "(OLD.stock > 0) IS DISTINCT FROM (NEW.stock > 0)"
    " OR OLD.price_paise IS DISTINCT FROM NEW.price_paise"
    " OR OLD.mrp_paise IS DISTINCT FROM NEW.mrp_paise"
    " OR OLD.is_active IS DISTINCT FROM NEW.is_active"
    " OR OLD.attributes IS DISTINCT FROM NEW.attributes"
    " OR OLD.product_id IS DISTINCT FROM NEW.product_id"
)


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION kirana_notify_catalog() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table in WHOLE_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION kirana_notify_catalog()"
        )
    op.execute(
        "CREATE TRIGGER catalog_variants_notify AFTER INSERT OR DELETE OR TRUNCATE ON catalog_variants "
        "FOR EACH STATEMENT EXECUTE FUNCTION kirana_notify_catalog()"
    )
    op.execute(
        "CREATE TRIGGER catalog_variants_notify_update AFTER UPDATE ON catalog_variants "
        f"FOR EACH ROW WHEN ({VARIANT_CHANGED}) EXECUTE FUNCTION kirana_notify_catalog()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER catalog_variants_notify_update ON catalog_variants")
    op.execute("DROP TRIGGER catalog_variants_notify ON catalog_variants")
    for table in reversed(WHOLE_TABLES):
        op.execute(f"DROP TRIGGER {table}_notify ON {table}")
    op.execute("DROP FUNCTION kirana_notify_catalog()")
