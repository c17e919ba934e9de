"""Request and response bodies of the payment routes."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kirana.api.inputs import Input

RazorpayId = Annotated[str, Field(min_length=3, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]


class Prefill(BaseModel):
    name: str | None = None
    email: str | None = None
    contact: str | None = None


class CheckoutRead(BaseModel):
    """What the client's Razorpay Checkout needs (`key`, `order_id`, `amount`, ...)."""

    key_id: str
    razorpay_order_id: str
    amount_paise: int
    currency: str
    order_id: uuid.UUID
    order_number: int
    name: str = "Kirana"
    description: str
    prefill: Prefill
    methods: list[str]
    # The user's Razorpay customer, so Checkout offers their saved cards and UPI ids.
    customer_id: str | None = None


class Verify(Input):
    razorpay_order_id: RazorpayId
    razorpay_payment_id: RazorpayId
    razorpay_signature: Annotated[str, Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]+$")]


class PaymentRead(BaseModel):
    order_id: uuid.UUID
    order_status: str
    razorpay_payment_id: str
    payment_status: str
    amount_paise: int
    currency: str
    paid_paise: int
    refunded_paise: int


class WebhookAck(BaseModel):
    status: str


class RefundCreate(Input):
    """Omit `amount_paise` to refund everything still refundable. `restock`: the goods came
    back, so their stock is put back once a delivered order is refunded in full."""

    amount_paise: Annotated[int, Field(ge=100, le=10**12)] | None = None
    reason: Annotated[str, Field(max_length=200)] | None = None
    restock: bool = False


class RefundItem(BaseModel):
    id: uuid.UUID
    razorpay_refund_id: str | None
    razorpay_payment_id: str
    amount_paise: int
    status: Literal["pending", "processed", "failed"]
    source: str


class RefundRead(BaseModel):
    """`refunded_paise` counts processed refunds; `pending_paise` those Razorpay still works on.
    `refund_state`: none, partial or full (of what was captured)."""

    order_id: uuid.UUID
    order_status: str
    captured_paise: int
    refunded_paise: int
    pending_paise: int
    paid_paise: int
    refund_state: Literal["none", "partial", "full"]
    refunds: list[RefundItem]


class CodCollect(Input):
    """The cash taken at the door, in paise: the order's whole total."""

    amount_paise: Annotated[int, Field(ge=100, le=10**12)]


class CodRead(BaseModel):
    """A cash-on-delivery order: confirmed without payment, settled by the cash at the door."""

    order_id: uuid.UUID
    order_status: str
    amount_paise: int
    currency: str
    collected: bool
    paid_paise: int


class UpiStart(Input):
    """`intent` (default) opens the customer's UPI app via `intent_url` or its QR code;
    `collect` sends a request to `vpa` (only where the merchant may still use Collect)."""

    model_config = ConfigDict(
        json_schema_extra={  # `_vpa_for_collect`, stated in the schema
            "if": {"properties": {"flow": {"const": "collect"}}, "required": ["flow"]},
            "then": {"required": ["vpa"], "properties": {"vpa": {"type": "string"}}},
        }
    )
    flow: Literal["intent", "collect"] = "intent"
    vpa: Annotated[str, Field(pattern=r"^[A-Za-z0-9.\-_]{2,256}@[A-Za-z]{2,64}$")] | None = None
    email: Annotated[str, Field(max_length=200)] = "customer@kirana.invalid"
    contact: Annotated[str, Field(pattern=r"^\+?[0-9]{10,13}$")] = "+919000000000"

    @model_validator(mode="after")
    def _vpa_for_collect(self) -> UpiStart:
        if self.flow == "collect" and not self.vpa:
            raise ValueError("collect needs the customer's UPI id (vpa)")
        return self


class UpiRead(BaseModel):
    flow: str
    razorpay_order_id: str
    razorpay_payment_id: str
    intent_url: str | None
    qr_svg: str | None


class SavedMethodRead(BaseModel):
    """Display fields only: no card number, expiry or full UPI id is ever stored or shown."""

    token_id: str
    method: str
    label: str
    network: str | None
    last4: str | None
    vpa_masked: str | None


class SavedMethods(BaseModel):
    razorpay_customer_id: str | None
    items: list[SavedMethodRead]
