"""Request and response shapes of the delivery API: assignments, positions, proof of delivery."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from kirana.api.inputs import Input

# NaN and infinities are refused by the bounds (every comparison with NaN is false).
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


# More cash than any order could be due (₹1 crore): a typo, not a delivery.
MAX_CASH_PAISE = 10_000_000_00


class Status(StrEnum):
    assigned = "assigned"
    en_route = "en_route"
    delivered = "delivered"
    failed = "failed"
    cancelled = "cancelled"


class FailureReason(StrEnum):
    customer_unavailable = "customer_unavailable"
    address_not_found = "address_not_found"
    refused = "refused"
    unsafe = "unsafe"
    other = "other"


class Point(Input):
    model_config = ConfigDict(extra="forbid")
    lat: Latitude
    lng: Longitude


class AssignmentCreate(Input):
    """Give an order to a delivery agent (replacing an active assignment, if any)."""

    model_config = ConfigDict(extra="forbid")
    agent_id: uuid.UUID
    destination: Point | None = Field(default=None, description="the drop point; without it, no ETA")


class PositionCreate(Input):
    """One GPS fix from the agent's app (at most about one a second per delivery)."""

    model_config = ConfigDict(extra="forbid")
    lat: Latitude
    lng: Longitude
    accuracy_m: Annotated[float, Field(ge=0, le=10_000, allow_inf_nan=False)] | None = None
    recorded_at: datetime | None = Field(
        default=None, description="when the device took the fix (default: when it arrived)"
    )


class Confirm(Input):
    """The one-time code the customer reads out to the agent."""

    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, Field(pattern=r"^[0-9]{4,8}$")]
    cash_paise: Annotated[int, Field(ge=0, le=MAX_CASH_PAISE)] | None = Field(
        default=None,
        description="The cash taken at the door of a cash-on-delivery order: the whole amount due "
        "(the order's `due_paise`). Required for such an order, refused for any other.",
    )


class Failure(Input):
    model_config = ConfigDict(extra="forbid")
    reason: FailureReason
    note: Annotated[str, Field(max_length=500)] = ""


class PositionRead(BaseModel):
    lat: float
    lng: float
    accuracy_m: float | None
    recorded_at: datetime


class DeliveryRead(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    agent_id: uuid.UUID
    store_code: str
    status: Status
    destination: Point | None
    position: PositionRead | None = Field(description="the latest position")
    eta_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    failure_reason: FailureReason | None
    code: str | None = Field(
        default=None, description="only for the order's customer, while the delivery is active"
    )
    channel: str = Field(description="the real-time channel of this delivery (`delivery:<order id>`)")
    trail: list[PositionRead] = Field(default_factory=list, description="recent positions, oldest first")


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
