"""Request and response shapes of the cart API (money in integer paise, re-priced on every read)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from kirana.api.catalog.pricing import Availability
from kirana.api.inputs import Input

SkuRef = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Z0-9][A-Z0-9\-_.]*$")]
# Bounded here so absurd values fail validation; the configured per-line limit applies after.
Quantity = Annotated[int, Field(ge=1, le=10_000)]


class LineAdd(Input):
    model_config = ConfigDict(extra="forbid")
    sku: SkuRef
    quantity: Quantity = 1


class LineSet(Input):
    model_config = ConfigDict(extra="forbid")
    quantity: Quantity


class MergeRequest(Input):
    model_config = ConfigDict(extra="forbid")
    guest_token: Annotated[str, Field(min_length=16, max_length=200)]


class CartLineRead(BaseModel):
    sku: str
    product_id: uuid.UUID
    product_slug: str
    title: str
    attributes: dict[str, Any]
    image_url: str | None
    quantity: int
    unit_price_paise: int
    unit_mrp_paise: int
    line_total_paise: int
    tax_rate_percent: int
    tax_paise: int
    availability: Availability
    available_quantity: int
    price_changed_from_paise: int | None


class CartRead(BaseModel):
    id: uuid.UUID | None
    lines: list[CartLineRead]
    item_count: int
    subtotal_paise: int
    mrp_total_paise: int
    savings_paise: int
    tax_paise: int
    total_paise: int
    checkout_ready: bool
    updated_at: datetime | None


class GuestCartCreated(BaseModel):
    token: str
    cart: CartRead
