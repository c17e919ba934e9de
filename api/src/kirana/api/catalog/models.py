"""Catalog tables: brands, categories (a tree with a materialised path), products, variants.

Read by the catalog service, the cart (pricing), orders (stock) and sync (pull). The variant's
`stock` is the quantity still sellable; a CHECK keeps it from ever going below zero, so even a
bug in the locking could not oversell.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from kirana.api.db.base import Base, Timestamps, new_id

TAX_CLASSES: dict[str, int] = {
    "gst_0": 0,
    "gst_5": 5,
    "gst_12": 12,
    "gst_18": 18,
    "gst_28": 28,
    "gst_40": 40,
}


class Brand(Timestamps, Base):
    __tablename__ = "catalog_brands"
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Category(Timestamps, Base):
    __tablename__ = "catalog_categories"
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("catalog_categories.id", ondelete="RESTRICT"), index=True
    )
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Slugs from the root down, joined by "/": a subtree is `path = p OR path LIKE p || '/%'`.
    path: Mapped[str] = mapped_column(String(1000))
    position: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_catalog_categories_path", "path", postgresql_ops={"path": "text_pattern_ops"}),
    )


class Product(Timestamps, Base):
    __tablename__ = "catalog_products"
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    brand_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("catalog_brands.id", ondelete="RESTRICT"), index=True
    )
    category_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_categories.id", ondelete="RESTRICT"), index=True
    )
    image_urls: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    is_published: Mapped[bool] = mapped_column(Boolean, default=False)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    # Denormalised from the active variants so listings sort by price without a join.
    min_price_paise: Mapped[int] = mapped_column(BigInteger, default=0)
    min_price_mrp_paise: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (
        Index(
            "ix_catalog_products_listing_newest",
            text("published_at DESC"),
            text("id DESC"),
            postgresql_where=text("is_published"),
        ),
        Index(
            "ix_catalog_products_listing_price",
            "min_price_paise",
            "id",
            postgresql_where=text("is_published"),
        ),
        Index(
            "ix_catalog_products_listing_title",
            "title",
            "id",
            postgresql_where=text("is_published"),
        ),
        # The same three orders within one category (the common "browse a shelf" listing).
        Index(
            "ix_catalog_products_category_newest",
            "category_id",
            text("published_at DESC"),
            text("id DESC"),
            postgresql_where=text("is_published"),
        ),
        Index(
            "ix_catalog_products_category_price",
            "category_id",
            "min_price_paise",
            "id",
            postgresql_where=text("is_published"),
        ),
        Index(
            "ix_catalog_products_category_title",
            "category_id",
            "title",
            "id",
            postgresql_where=text("is_published"),
        ),
    )


class Variant(Timestamps, Base):
    __tablename__ = "catalog_variants"
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_products.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    price_paise: Mapped[int] = mapped_column(BigInteger)
    mrp_paise: Mapped[int] = mapped_column(BigInteger)
    tax_class: Mapped[str] = mapped_column(String(16))
    stock: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        CheckConstraint("stock >= 0", "stock_not_negative"),
        CheckConstraint("price_paise > 0 AND price_paise <= mrp_paise", "price_within_mrp"),
        CheckConstraint(
            "tax_class IN ('gst_0', 'gst_5', 'gst_12', 'gst_18', 'gst_28', 'gst_40')", "tax_class_known"
        ),
        Index("ix_catalog_variants_attributes", "attributes", postgresql_using="gin"),
    )
