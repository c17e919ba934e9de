"""Request and response shapes of `/v1/search`; built by `search.service`, served by its router."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

from kirana.api.inputs import Input


class Sort(StrEnum):
    relevance = "relevance"
    price_asc = "price_asc"
    price_desc = "price_desc"
    newest = "newest"
    discount = "discount"


class Hit(BaseModel):
    id: uuid.UUID
    slug: str
    title: str
    brand: str | None
    category: str
    image_url: str | None
    price_paise: int
    mrp_paise: int
    discount_pct: int
    in_stock: bool
    published_at: datetime


class CategoryCount(BaseModel):
    slug: str
    name: str
    parent: str | None
    count: int


class ValueCount(BaseModel):
    value: str
    label: str
    count: int


class PriceBucket(BaseModel):
    min_paise: int
    max_paise: int | None  # None: no upper bound
    count: int


class StockCount(BaseModel):
    in_stock: bool
    count: int


class Facets(BaseModel):
    """Each facet counted over the matches with every OTHER facet's selection applied."""

    categories: list[CategoryCount]
    brands: list[ValueCount]
    prices: list[PriceBucket]
    attributes: list[ValueCount]  # value is "name:value", as the attr parameter takes it
    in_stock: list[StockCount]


class SearchPage(BaseModel):
    items: list[Hit]
    total: int
    next_cursor: str | None
    facets: Facets
    did_you_mean: str | None = None


class Suggestion(BaseModel):
    kind: str  # product | brand | category
    text: str


class SuggestPage(BaseModel):
    items: list[Suggestion]


class SynonymWrite(Input):
    terms: list[str] = Field(min_length=2, max_length=20)

    @field_validator("terms")
    @classmethod
    def _clean(cls, terms: list[str]) -> list[str]:
        out = list(dict.fromkeys(" ".join(t.split()).lower() for t in terms if t.strip()))
        if len(out) < 2:
            raise ValueError("a synonym group needs at least two different terms")
        if any(len(t) > 60 for t in out):
            raise ValueError("a term is at most 60 characters")
        return out


class SynonymRead(BaseModel):
    id: uuid.UUID
    terms: list[str]
    updated_at: datetime
