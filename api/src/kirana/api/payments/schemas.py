"""Request and response bodies of the payment routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, Field

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


class Verify(BaseModel):
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


class RefundCreate(BaseModel):
    """Omit `amount_paise` to refund everything still refundable."""

    amount_paise: Annotated[int, Field(ge=100, le=10**12)] | None = None
    reason: Annotated[str, Field(max_length=200)] | None = None


class RefundRead(BaseModel):
    order_id: uuid.UUID
    order_status: str
    captured_paise: int
    refunded_paise: int
    paid_paise: int
