"""Request and response shapes of the catalog API (money in integer paise)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, WithJsonSchema, field_validator, model_validator

from kirana.api.catalog.models import TAX_CLASSES
from kirana.api.inputs import Input

Slug = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Z0-9][A-Z0-9\-_.]*$")]
Paise = Annotated[int, Field(gt=0, le=100_000_000_00)]  # up to ₹1 crore per unit
MAX_STOCK = 10_000_000


class Strict(Input):
    model_config = ConfigDict(extra="forbid")


def _check_attributes(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 10:
        raise ValueError("at most 10 attributes")
    for k, v in value.items():
        if not (0 < len(k) <= 40) or not (0 < len(v) <= 80):
            raise ValueError("attribute names must be 1-40 characters and values 1-80")
    return value


class BrandCreate(Strict):
    slug: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]


class BrandUpdate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class BrandRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    slug: str
    name: str


class CategoryCreate(Strict):
    slug: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    parent: Slug | None = None
    position: int = 0


class CategoryUpdate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    position: int | None = None


class CategoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    slug: str
    name: str
    path: str
    parent_id: uuid.UUID | None
    position: int


class CategoryNode(CategoryRead):
    children: list[CategoryNode] = []


# The validators below refuse unknown classes; the schema names the known ones.
TaxClass = Annotated[str, WithJsonSchema({"type": "string", "enum": list(TAX_CLASSES)})]


class VariantCreate(Strict):
    sku: Sku
    attributes: dict[str, str] = {}
    price_paise: Paise
    mrp_paise: Paise
    tax_class: TaxClass
    stock: Annotated[int, Field(ge=0, le=MAX_STOCK)] = 0

    _attrs = field_validator("attributes")(_check_attributes)

    @field_validator("tax_class")
    @classmethod
    def _known_tax_class(cls, value: str) -> str:
        if value not in TAX_CLASSES:
            raise ValueError(f"must be one of {', '.join(TAX_CLASSES)}")
        return value

    @model_validator(mode="after")
    def _price_within_mrp(self) -> VariantCreate:
        if self.price_paise > self.mrp_paise:
            raise ValueError("price_paise must not exceed mrp_paise (selling above MRP is not allowed)")
        return self


class VariantUpdate(Strict):
    attributes: dict[str, str] | None = None
    price_paise: Paise | None = None
    mrp_paise: Paise | None = None
    tax_class: TaxClass | None = None
    # No `stock` here: stock is what is still for sale (reservations already taken off), so an
    # absolute value from a shelf count would double-count reserved units. Use the stock delta.
    is_active: bool | None = None

    @field_validator("tax_class")
    @classmethod
    def _known_tax_class(cls, value: str | None) -> str | None:
        if value is not None and value not in TAX_CLASSES:
            raise ValueError(f"must be one of {', '.join(TAX_CLASSES)}")
        return value

    @field_validator("attributes")
    @classmethod
    def _attrs(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else _check_attributes(value)


class StockAdjust(Strict):
    """Add (positive) or remove (negative) units, e.g. a delivery or a stock-take correction."""

    delta: Annotated[int, Field(ge=-MAX_STOCK, le=MAX_STOCK)]

    @field_validator("delta")
    @classmethod
    def _non_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must not be zero")
        return value


class ProductCreate(Strict):
    slug: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
    title: Annotated[str, Field(min_length=1, max_length=300)]
    description: Annotated[str, Field(max_length=20_000)] = ""
    brand: Slug | None = None
    category: Slug
    image_urls: Annotated[list[HttpUrl], Field(max_length=20)] = []
    variants: Annotated[list[VariantCreate], Field(min_length=1, max_length=100)]
    publish: bool = False

    @model_validator(mode="after")
    def _distinct_skus(self) -> ProductCreate:
        skus = [v.sku for v in self.variants]
        if len(set(skus)) != len(skus):
            raise ValueError("variant SKUs must be distinct")
        return self


class ProductUpdate(Strict):
    title: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    description: Annotated[str, Field(max_length=20_000)] | None = None
    brand: Slug | None = None
    category: Slug | None = None
    image_urls: Annotated[list[HttpUrl], Field(max_length=20)] | None = None


class VariantRead(BaseModel):
    sku: str
    attributes: dict[str, Any]
    price_paise: int
    mrp_paise: int
    discount_percent: int
    tax_class: str
    tax_rate_percent: int
    in_stock: bool
    stock: int
    is_active: bool


class ProductRead(BaseModel):
    id: uuid.UUID
    slug: str
    title: str
    description: str
    brand: BrandRead | None
    category: CategoryRead
    image_urls: list[str]
    is_published: bool
    published_at: datetime | None
    price_paise: int
    mrp_paise: int
    discount_percent: int
    in_stock: bool
    variants: list[VariantRead]
    updated_at: datetime


class ProductSummary(BaseModel):
    id: uuid.UUID
    slug: str
    title: str
    brand: str | None
    category: str
    image_url: str | None
    price_paise: int
    mrp_paise: int
    discount_percent: int
    in_stock: bool


class ProductPage(BaseModel):
    items: list[ProductSummary]
    next_cursor: str | None


class Sort(StrEnum):
    newest = "newest"
    price_asc = "price_asc"
    price_desc = "price_desc"
    title_asc = "title"


class ProductQuery(BaseModel):
    category: str | None = None
    brands: list[str] = []
    min_price_paise: int | None = None
    max_price_paise: int | None = None
    attributes: dict[str, list[str]] = {}
    in_stock: bool | None = None
    q: str | None = None
    sort: Sort = Sort.newest
    limit: int = 24
    cursor: str | None = None
    include_unpublished: bool = False
