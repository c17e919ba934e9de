"""Wire format of offline sync (documented for app developers in docs/sync-protocol.md)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

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


# What `Mutation._shape` requires per type, stated in the schema so clients see it.
_NEEDS = [
    (["cart.add", "cart.set_quantity"], ["sku", "quantity"]),
    (["cart.remove"], ["sku"]),
]
_SHAPE: dict[str, Any] = {
    "allOf": [
        {
            "if": {"properties": {"type": {"enum": types}}, "required": ["type"]},
            "then": {
                "required": fields,
                "properties": {f: {"not": {"type": "null"}} for f in fields},
            },
        }
        for types, fields in _NEEDS
    ]
}


class Mutation(Input):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_SHAPE)
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


@dataclass(frozen=True)
class Unreadable:
    """A queued mutation that failed validation. It is rejected on its own (reason
    `validation-error`) and the others of the push still apply: a client that resends its
    queue must never be stuck behind one bad entry."""

    client_mutation_id: uuid.UUID
    errors: list[dict[str, Any]]


_MUTATION: TypeAdapter[Mutation] = TypeAdapter(Mutation)


def _mutation_or_unreadable(value: Any) -> Mutation | Unreadable:
    try:
        return _MUTATION.validate_python(value)
    except ValidationError as exc:
        raw = value.get("client_mutation_id") if isinstance(value, dict) else None
        try:
            mutation_id = uuid.UUID(raw) if isinstance(raw, str) else None
        except ValueError:
            mutation_id = None
        if mutation_id is None:  # no answer could name it: the whole push is refused
            raise ValueError(
                f"a mutation without a valid client_mutation_id: {exc.errors()[0]['msg']}"
            ) from None
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        return Unreadable(mutation_id, errors)


QueuedMutation = Annotated[
    Mutation | SkipJsonSchema[Unreadable],
    PlainValidator(_mutation_or_unreadable, json_schema_input_type=Mutation),
]


class PushRequest(Input):
    model_config = ConfigDict(extra="forbid")
    mutations: Annotated[list[QueuedMutation], Field(min_length=1, max_length=100)]

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
