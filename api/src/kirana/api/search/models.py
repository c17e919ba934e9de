"""Search tables. Rows of `search_documents`, `search_words` and `search_terms` are written by
the database triggers of the search migration (never by Python), so they change in the same
transaction as the catalog rows they mirror; `search_synonyms` is written by `search.service`.

Mapped here so the drift check knows them and the service can read them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from kirana.api.db.base import Base, Timestamps, new_id


class SearchDocument(Base):
    __tablename__ = "search_documents"

    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_products.id", ondelete="CASCADE"), primary_key=True
    )
    # title A, brand B, category names C, attribute values D (ranking) ...
    doc: Mapped[str] = mapped_column(TSVECTOR)
    # ... and the same plus the description in D (matching)
    doc_all: Mapped[str] = mapped_column(TSVECTOR)
    title: Mapped[str] = mapped_column(String(300))
    brand_slug: Mapped[str | None] = mapped_column(String(120))
    brand_name: Mapped[str | None] = mapped_column(String(200))
    categories: Mapped[list[str]] = mapped_column(ARRAY(Text))  # slugs from the root down
    attrs: Mapped[list[str]] = mapped_column(ARRAY(Text))  # "name:value" of active variants
    skus: Mapped[list[str]] = mapped_column(ARRAY(Text))  # upper case
    in_stock: Mapped[bool] = mapped_column(Boolean)
    price_paise: Mapped[int] = mapped_column(BigInteger)
    discount_pct: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    popularity: Mapped[int] = mapped_column(BigInteger)  # units ordered

    __table_args__ = (
        Index("ix_search_documents_doc_all", "doc_all", postgresql_using="gin"),
        Index("ix_search_documents_categories", "categories", postgresql_using="gin"),
        Index("ix_search_documents_skus", "skus", postgresql_using="gin"),
        Index("ix_search_documents_brand", "brand_slug"),
    )


class SearchWord(Base):
    """Every folded word of every indexed title, brand, category and attribute."""

    __tablename__ = "search_words"

    word: Mapped[str] = mapped_column(Text, primary_key=True)

    __table_args__ = (
        Index(
            "ix_search_words_trgm", "word", postgresql_using="gist", postgresql_ops={"word": "gist_trgm_ops"}
        ),
        Index("ix_search_words_prefix", "word", postgresql_ops={"word": "text_pattern_ops"}),
    )


class SearchTerm(Base):
    """A suggestion: `term` (a title, brand or category name) is offered for prefixes of `key`."""

    __tablename__ = "search_terms"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    term: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    weight: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_search_terms_prefix", "key", postgresql_ops={"key": "text_pattern_ops"}),)


class Synonym(Timestamps, Base):
    """A group of equivalent terms (any of them finds what the others find)."""

    __tablename__ = "search_synonyms"
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    terms: Mapped[list[str]] = mapped_column(ARRAY(Text))
    folded: Mapped[list[str]] = mapped_column(ARRAY(Text))  # search_fold() of each term

    __table_args__ = (Index("ix_search_synonyms_folded", "folded", postgresql_using="gin"),)
