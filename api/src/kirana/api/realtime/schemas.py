"""Pydantic models of the real-time REST answers and of the frames a client sends."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class TicketRead(BaseModel):
    ticket: str
    expires_in: int = Field(description="seconds the ticket stays valid; it works once")


class Since(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epoch: Annotated[str, Field(max_length=32)]
    seq: Annotated[int, Field(ge=0)]


class Subscribe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: Literal["subscribe"]
    channel: Annotated[str, Field(max_length=100)]
    since: Since | None = None


class Unsubscribe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: Literal["unsubscribe"]
    channel: Annotated[str, Field(max_length=100)]


class Ping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: Literal["ping"]


ClientFrame = Annotated[Subscribe | Unsubscribe | Ping, Field(discriminator="op")]
