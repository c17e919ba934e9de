"""Request and response shapes of /v1/loyalty. Points are integers; money is integer paise."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, model_validator

from kirana.api.inputs import Input

Period = Literal["week", "month", "all"]
Code = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]


class BalanceRead(BaseModel):
    balance: int = Field(description="Spendable points (never below zero).")
    debt: int = Field(description="Points a refund reversed beyond the balance; earnings pay it first.")
    pending: int = Field(description="Points of paid orders, credited when they are delivered.")
    tier: str
    multiplier_percent: int
    spend_12m_paise: int
    next_tier: str | None
    next_tier_spend_paise: int | None
    point_value_paise: int
    leaderboard_opt_out: bool


class EntryRead(BaseModel):
    id: int
    kind: str
    points: int
    source: str
    order_id: uuid.UUID | None
    reason: str | None
    created_at: datetime


class EntryPage(BaseModel):
    items: list[EntryRead]
    next_cursor: str | None


class RedemptionCreate(Input):
    order_id: uuid.UUID
    points: Annotated[int, Field(gt=0, le=10_000_000)]


class RedemptionRead(BaseModel):
    order_id: uuid.UUID
    points: int
    value_paise: int
    status: str
    balance: int


class AdjustmentCreate(Input):
    points: Annotated[int, Field(ge=-10_000_000, le=10_000_000)]
    reason: Annotated[str, Field(min_length=3, max_length=500)]

    @model_validator(mode="after")
    def _nonzero(self) -> AdjustmentCreate:
        if self.points == 0:
            raise ValueError("points must not be zero")
        return self


class AchievementRead(BaseModel):
    rule: str
    title: str
    progress: int
    target: int
    unlocked_at: datetime | None


class AchievementList(BaseModel):
    items: list[AchievementRead]


class CampaignCreate(Input):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    store_code: Code | None = None
    category: Code | None = None
    brand: Code | None = None
    bonus_per_100_rupees: Annotated[int, Field(ge=0, le=10_000)] = 0
    multiplier_percent: Annotated[int, Field(ge=100, le=1000)] = 100
    starts_at: datetime
    ends_at: datetime | None = Field(default=None, description="None: a standing earn rule.")


class CampaignUpdate(Input):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    bonus_per_100_rupees: Annotated[int, Field(ge=0, le=10_000)] | None = None
    multiplier_percent: Annotated[int, Field(ge=100, le=1000)] | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class CampaignRead(BaseModel):
    id: uuid.UUID
    name: str
    store_code: str | None
    category: str | None
    brand: str | None
    bonus_per_100_rupees: int
    multiplier_percent: int
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime


class CampaignList(BaseModel):
    items: list[CampaignRead]


class PreferenceUpdate(Input):
    leaderboard_opt_out: StrictBool  # `true` or `false`: 0 and "no" are refused, as documented


class Standing(BaseModel):
    rank: int
    points: int
    name: str
    me: bool = False


class LeaderboardRead(BaseModel):
    period: Period
    period_key: str
    scope: str
    top: list[Standing]
    me: Standing | None
    around: list[Standing]
