"""Wire format of offline sync (documented for app developers in docs/sync-protocol.md)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kirana.api.cart.schemas import Quantity, SkuRef
from kirana.api.inputs import Input
from kirana.api.orders.schemas import Address, StoreCode


class Entity(StrEnum):
    product = "product"
    category = "category"
    brand = "brand"
    cart = "cart"
    order = "order"


class Change(BaseModel):
    entity: Entity
    id: uuid.UUID
    seq: int
    deleted: bool
    data: dict[str, Any] | None = None


class PullPage(BaseModel):
    cursor: str
    has_more: bool
    changes: list[Change]


MutationType = Literal["cart.add", "cart.set_quantity", "cart.remove", "order.place"]


class Mutation(Input):
    model_config = ConfigDict(extra="forbid")
    client_mutation_id: uuid.UUID
    type: MutationType
    sku: SkuRef | None = None
    quantity: Quantity | None = None
    # What the app showed the shopper while offline; a different server price rejects the
    # mutation with reason price-changed instead of silently charging more (or less).
    expected_unit_price_paise: Annotated[int, Field(gt=0)] | None = None
    expected_total_paise: Annotated[int, Field(ge=0)] | None = None
    store_code: StoreCode | None = None
    shipping_address: Address | None = None

    @model_validator(mode="after")
    def _shape(self) -> Mutation:
        if self.type in ("cart.add", "cart.set_quantity") and (self.sku is None or self.quantity is None):
            raise ValueError(f"{self.type} needs sku and quantity")
        if self.type == "cart.remove" and self.sku is None:
            raise ValueError("cart.remove needs sku")
        return self


class PushRequest(Input):
    model_config = ConfigDict(extra="forbid")
    mutations: Annotated[list[Mutation], Field(min_length=1, max_length=100)]

    @model_validator(mode="after")
    def _distinct_ids(self) -> PushRequest:
        ids = [m.client_mutation_id for m in self.mutations]
        if len(set(ids)) != len(ids):
            raise ValueError("client_mutation_id values must be distinct within a batch")
        return self


class MutationResult(BaseModel):
    client_mutation_id: uuid.UUID
    status: Literal["applied", "rejected"]
    reason: str | None = None  # the problem type slug, e.g. out-of-stock, price-changed
    detail: str | None = None
    data: dict[str, Any] = {}
    replayed: bool = False


class PushResponse(BaseModel):
    results: list[MutationResult]
