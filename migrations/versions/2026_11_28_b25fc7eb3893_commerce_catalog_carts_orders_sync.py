"""commerce: catalog, carts, orders, idempotency keys, sync

Revision ID: b25fc7eb3893
Revises: 37804480427f
Create Date: 2026-11-28 01:42:09.321863
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "b25fc7eb3893"
down_revision = "37804480427f"
branch_labels = None
depends_on = None

# Zero-downtime rules this migration knowingly breaks, each with the reason it is safe here
# (`kirana db check` lists the rule names), e.g. {"drop-column": "unused since release 1.4"}.
waivers: dict[str, str] = {}


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("order_number_seq", start=100001)))
    op.execute(sa.schema.CreateSequence(sa.Sequence("sync_change_seq")))
    op.create_table(
        "carts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('active', 'merged', 'converted')", name=op.f("ck_carts_status_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carts")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_carts_token_hash")),
    )
    op.create_index(op.f("ix_carts_user_id"), "carts", ["user_id"], unique=False)
    op.create_index(
        "uq_carts_one_active_per_user",
        "carts",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("status = 'active' AND user_id IS NOT NULL"),
    )
    op.create_table(
        "catalog_brands",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_brands")),
        sa.UniqueConstraint("slug", name=op.f("uq_catalog_brands_slug")),
    )
    op.create_table(
        "catalog_categories",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["catalog_categories.id"],
            name=op.f("fk_catalog_categories_parent_id_catalog_categories"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_categories")),
        sa.UniqueConstraint("slug", name=op.f("uq_catalog_categories_slug")),
    )
    op.create_index(
        op.f("ix_catalog_categories_parent_id"), "catalog_categories", ["parent_id"], unique=False
    )
    op.create_index(
        "ix_catalog_categories_path",
        "catalog_categories",
        ["path"],
        unique=False,
        postgresql_ops={"path": "text_pattern_ops"},
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("response_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('running', 'done')", name=op.f("ck_idempotency_keys_state_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("owner", "key", name=op.f("uq_idempotency_keys_owner_key")),
    )
    op.create_index(op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False)
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "number", sa.BigInteger(), server_default=sa.text("nextval('order_number_seq')"), nullable=False
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("store_code", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal_paise", sa.BigInteger(), nullable=False),
        sa.Column("mrp_total_paise", sa.BigInteger(), nullable=False),
        sa.Column("tax_paise", sa.BigInteger(), nullable=False),
        sa.Column("total_paise", sa.BigInteger(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("shipping_address", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("reservation_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending_payment', 'paid', 'packed', 'shipped', 'out_for_delivery', 'delivered', 'cancelled', 'expired', 'refunded')",
            name=op.f("ck_orders_status_known"),
        ),
        sa.CheckConstraint("total_paise >= 0", name=op.f("ck_orders_total_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_orders_number")),
    )
    op.create_index(
        "ix_orders_reservations_due",
        "orders",
        ["reservation_expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending_payment'"),
    )
    op.create_index(
        "ix_orders_store_created",
        "orders",
        ["store_code", sa.literal_column("created_at DESC")],
        unique=False,
    )
    op.create_index(
        "ix_orders_user_created", "orders", ["user_id", sa.literal_column("created_at DESC")], unique=False
    )
    op.create_index(op.f("ix_orders_user_id"), "orders", ["user_id"], unique=False)
    op.create_table(
        "sync_changes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_changes")),
    )
    op.create_index("ix_sync_changes_entity", "sync_changes", ["entity", "entity_id"], unique=False)
    op.create_index(
        "ix_sync_changes_unstamped",
        "sync_changes",
        ["id"],
        unique=False,
        postgresql_where=sa.text("seq IS NULL"),
    )
    op.create_index(
        "ix_sync_changes_user_seq",
        "sync_changes",
        ["user_id", "seq"],
        unique=False,
        postgresql_where=sa.text("user_id IS NOT NULL"),
    )
    op.create_index("uq_sync_changes_seq", "sync_changes", ["seq"], unique=True)
    op.create_table(
        "sync_floor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("floor_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_floor")),
    )
    op.create_table(
        "sync_mutations",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("client_mutation_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "client_mutation_id", name=op.f("pk_sync_mutations")),
    )
    op.create_index(op.f("ix_sync_mutations_created_at"), "sync_mutations", ["created_at"], unique=False)
    op.create_table(
        "catalog_products",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("brand_id", sa.Uuid(), nullable=True),
        sa.Column("category_id", sa.Uuid(), nullable=False),
        sa.Column("image_urls", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("is_published", sa.Boolean(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("min_price_paise", sa.BigInteger(), nullable=False),
        sa.Column("min_price_mrp_paise", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["catalog_brands.id"],
            name=op.f("fk_catalog_products_brand_id_catalog_brands"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["catalog_categories.id"],
            name=op.f("fk_catalog_products_category_id_catalog_categories"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_products")),
        sa.UniqueConstraint("slug", name=op.f("uq_catalog_products_slug")),
    )
    op.create_index(op.f("ix_catalog_products_brand_id"), "catalog_products", ["brand_id"], unique=False)
    op.create_index(
        op.f("ix_catalog_products_category_id"), "catalog_products", ["category_id"], unique=False
    )
    op.create_index(
        "ix_catalog_products_listing_newest",
        "catalog_products",
        [sa.literal_column("published_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("is_published"),
    )
    op.create_index(
        "ix_catalog_products_listing_price",
        "catalog_products",
        ["min_price_paise", "id"],
        unique=False,
        postgresql_where=sa.text("is_published"),
    )
    op.create_index(
        "ix_catalog_products_category_newest",
        "catalog_products",
        ["category_id", sa.literal_column("published_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("is_published"),
    )
    op.create_index(
        "ix_catalog_products_category_price",
        "catalog_products",
        ["category_id", "min_price_paise", "id"],
        unique=False,
        postgresql_where=sa.text("is_published"),
    )
    op.create_index(
        "ix_catalog_products_category_title",
        "catalog_products",
        ["category_id", "title", "id"],
        unique=False,
        postgresql_where=sa.text("is_published"),
    )
    op.create_index(
        "ix_catalog_products_listing_title",
        "catalog_products",
        ["title", "id"],
        unique=False,
        postgresql_where=sa.text("is_published"),
    )
    op.create_table(
        "order_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=True),
        sa.Column("to_status", sa.String(length=24), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "actor_kind IN ('customer', 'staff', 'system')", name=op.f("ck_order_events_actor_kind_known")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_events_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    op.create_index(op.f("ix_order_events_order_id"), "order_events", ["order_id"], unique=False)
    op.create_table(
        "catalog_variants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("price_paise", sa.BigInteger(), nullable=False),
        sa.Column("mrp_paise", sa.BigInteger(), nullable=False),
        sa.Column("tax_class", sa.String(length=16), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "tax_class IN ('gst_0', 'gst_5', 'gst_12', 'gst_18', 'gst_28', 'gst_40')",
            name=op.f("ck_catalog_variants_tax_class_known"),
        ),
        sa.CheckConstraint(
            "price_paise > 0 AND price_paise <= mrp_paise", name=op.f("ck_catalog_variants_price_within_mrp")
        ),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_catalog_variants_stock_not_negative")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["catalog_products.id"],
            name=op.f("fk_catalog_variants_product_id_catalog_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_variants")),
        sa.UniqueConstraint("sku", name=op.f("uq_catalog_variants_sku")),
    )
    op.create_index(
        "ix_catalog_variants_attributes",
        "catalog_variants",
        ["attributes"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(op.f("ix_catalog_variants_product_id"), "catalog_variants", ["product_id"], unique=False)
    op.create_table(
        "cart_lines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("cart_id", sa.Uuid(), nullable=False),
        sa.Column("variant_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("price_at_add_paise", sa.BigInteger(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_cart_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["cart_id"], ["carts.id"], name=op.f("fk_cart_lines_cart_id_carts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["catalog_variants.id"],
            name=op.f("fk_cart_lines_variant_id_catalog_variants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cart_lines")),
        sa.UniqueConstraint("cart_id", "variant_id", name=op.f("uq_cart_lines_cart_id_variant_id")),
    )
    op.create_index(op.f("ix_cart_lines_cart_id"), "cart_lines", ["cart_id"], unique=False)
    op.create_index(op.f("ix_cart_lines_variant_id"), "cart_lines", ["variant_id"], unique=False)
    op.create_table(
        "order_lines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("variant_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_paise", sa.BigInteger(), nullable=False),
        sa.Column("unit_mrp_paise", sa.BigInteger(), nullable=False),
        sa.Column("tax_rate_percent", sa.Integer(), nullable=False),
        sa.Column("tax_paise", sa.BigInteger(), nullable=False),
        sa.Column("line_total_paise", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_lines_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["catalog_variants.id"],
            name=op.f("fk_order_lines_variant_id_catalog_variants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
    )
    op.create_index(op.f("ix_order_lines_order_id"), "order_lines", ["order_id"], unique=False)
    op.create_index(op.f("ix_order_lines_variant_id"), "order_lines", ["variant_id"], unique=False)
    op.execute("INSERT INTO sync_floor (id, floor_seq) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_index(op.f("ix_order_lines_variant_id"), table_name="order_lines")
    op.drop_index(op.f("ix_order_lines_order_id"), table_name="order_lines")
    op.drop_table("order_lines")
    op.drop_index(op.f("ix_cart_lines_variant_id"), table_name="cart_lines")
    op.drop_index(op.f("ix_cart_lines_cart_id"), table_name="cart_lines")
    op.drop_table("cart_lines")
    op.drop_index(op.f("ix_catalog_variants_product_id"), table_name="catalog_variants")
    op.drop_index("ix_catalog_variants_attributes", table_name="catalog_variants", postgresql_using="gin")
    op.drop_table("catalog_variants")
    op.drop_index(op.f("ix_order_events_order_id"), table_name="order_events")
    op.drop_table("order_events")
    op.drop_index("ix_catalog_products_category_title", table_name="catalog_products")
    op.drop_index("ix_catalog_products_category_price", table_name="catalog_products")
    op.drop_index("ix_catalog_products_category_newest", table_name="catalog_products")
    op.drop_index(
        "ix_catalog_products_listing_title",
        table_name="catalog_products",
        postgresql_where=sa.text("is_published"),
    )
    op.drop_index(
        "ix_catalog_products_listing_price",
        table_name="catalog_products",
        postgresql_where=sa.text("is_published"),
    )
    op.drop_index(
        "ix_catalog_products_listing_newest",
        table_name="catalog_products",
        postgresql_where=sa.text("is_published"),
    )
    op.drop_index(op.f("ix_catalog_products_category_id"), table_name="catalog_products")
    op.drop_index(op.f("ix_catalog_products_brand_id"), table_name="catalog_products")
    op.drop_table("catalog_products")
    op.drop_index(op.f("ix_sync_mutations_created_at"), table_name="sync_mutations")
    op.drop_table("sync_mutations")
    op.drop_table("sync_floor")
    op.drop_index("uq_sync_changes_seq", table_name="sync_changes")
    op.drop_index(
        "ix_sync_changes_user_seq", table_name="sync_changes", postgresql_where=sa.text("user_id IS NOT NULL")
    )
    op.drop_index(
        "ix_sync_changes_unstamped", table_name="sync_changes", postgresql_where=sa.text("seq IS NULL")
    )
    op.drop_index("ix_sync_changes_entity", table_name="sync_changes")
    op.drop_table("sync_changes")
    op.drop_index(op.f("ix_orders_user_id"), table_name="orders")
    op.drop_index("ix_orders_user_created", table_name="orders")
    op.drop_index("ix_orders_store_created", table_name="orders")
    op.drop_index(
        "ix_orders_reservations_due",
        table_name="orders",
        postgresql_where=sa.text("status = 'pending_payment'"),
    )
    op.drop_table("orders")
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index(
        "ix_catalog_categories_path",
        table_name="catalog_categories",
        postgresql_ops={"path": "text_pattern_ops"},
    )
    op.drop_index(op.f("ix_catalog_categories_parent_id"), table_name="catalog_categories")
    op.drop_table("catalog_categories")
    op.drop_table("catalog_brands")
    op.drop_index(
        "uq_carts_one_active_per_user",
        table_name="carts",
        postgresql_where=sa.text("status = 'active' AND user_id IS NOT NULL"),
    )
    op.drop_index(op.f("ix_carts_user_id"), table_name="carts")
    op.drop_table("carts")
    op.execute(sa.schema.DropSequence(sa.Sequence("sync_change_seq")))
    op.execute(sa.schema.DropSequence(sa.Sequence("order_number_seq")))
