"""Request and response shapes of checkout and the orders API (money in integer paise)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kirana.api.cart.schemas import Quantity, SkuRef
from kirana.api.inputs import Input
from kirana.api.orders.states import Status

StoreCode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,39}$")]


class Address(Input):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=120)]
    phone: Annotated[str, Field(pattern=r"^\+?[0-9]{10,13}$")]
    line1: Annotated[str, Field(min_length=1, max_length=200)]
    line2: Annotated[str, Field(max_length=200)] = ""
    city: Annotated[str, Field(min_length=1, max_length=100)]
    state: Annotated[str, Field(min_length=1, max_length=100)]
    pincode: Annotated[str, Field(pattern=r"^[1-9][0-9]{5}$")]


class OrderLineIn(Input):
    model_config = ConfigDict(extra="forbid")
    sku: SkuRef
    quantity: Quantity


class PlaceOrder(Input):
    """Buy these lines now (the mobile app and quick "buy now"); prices come from the server."""

    model_config = ConfigDict(extra="forbid")
    lines: Annotated[list[OrderLineIn], Field(min_length=1, max_length=100)]
    expected_total_paise: Annotated[int, Field(ge=0)] | None = None
    store_code: StoreCode | None = None
    shipping_address: Address | None = None

    @model_validator(mode="after")
    def _distinct(self) -> PlaceOrder:
        skus = [line.sku for line in self.lines]
        if len(set(skus)) != len(skus):
            raise ValueError("each SKU may appear once; put the total quantity on one line")
        return self


class Checkout(Input):
    """Buy the caller's cart. `expected_total_paise` is the total the shopper agreed to: if the
    server's price differs, checkout is refused with price-changed instead of charging more."""

    model_config = ConfigDict(extra="forbid")
    expected_total_paise: Annotated[int, Field(ge=0)] | None = None
    store_code: StoreCode | None = None
    shipping_address: Address | None = None


class Transition(Input):
    model_config = ConfigDict(extra="forbid")
    status: Status
    reason: Annotated[str, Field(max_length=500)] | None = None


class Refund(Input):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(max_length=500)] | None = None


class OrderLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    sku: str
    title: str
    attributes: dict[str, Any]
    quantity: int
    unit_price_paise: int
    unit_mrp_paise: int
    tax_rate_percent: int
    tax_paise: int
    line_total_paise: int


class OrderEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    from_status: str | None
    to_status: str
    actor_id: uuid.UUID | None
    actor_kind: str
    reason: str | None
    created_at: datetime


class OrderRead(BaseModel):
    id: uuid.UUID
    number: int
    user_id: uuid.UUID
    store_code: str
    status: Status
    currency: str
    item_count: int
    subtotal_paise: int
    mrp_total_paise: int
    savings_paise: int
    tax_paise: int
    total_paise: int
    discount_paise: int = Field(description="What loyalty points held on the order pay")
    due_paise: int = Field(description="What is paid in money: `total_paise - discount_paise`")
    shipping_address: dict[str, Any] | None
    reservation_expires_at: datetime | None
    paid_at: datetime | None
    created_at: datetime
    updated_at: datetime
    lines: list[OrderLineRead]
    history: list[OrderEventRead]


class OrderSummary(BaseModel):
    id: uuid.UUID
    number: int
    user_id: uuid.UUID
    store_code: str
    status: Status
    item_count: int
    total_paise: int
    created_at: datetime


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None
