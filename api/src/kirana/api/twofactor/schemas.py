"""Request and response bodies of the two-factor routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from kirana.api.inputs import Input


class TotpEnrolment(BaseModel):
    secret: str = Field(description="base32 seed, for typing into an app by hand")
    otpauth_uri: str
    qr_png: str = Field(description="data: URI of a PNG QR code of the otpauth URI")
    qr_svg: str


class CodeIn(Input):
    code: str = Field(min_length=4, max_length=20)


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="shown once; each works one time")


class StepUpIn(Input):
    method: Literal["totp", "sms", "recovery", "password"]
    code: str | None = Field(default=None, max_length=20)
    password: str | None = Field(default=None, max_length=256)


class DisableIn(Input):
    password: str = Field(max_length=256)


class TwoFactorStatus(BaseModel):
    totp: bool
    sms: bool
    recovery_codes_left: int


class Sent(BaseModel):
    status: Literal["sent"] = "sent"
    to: str = Field(description="the number, partly masked")
