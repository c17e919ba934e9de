"""Request and response bodies of the accounts routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from kirana.api.accounts import identifiers
from kirana.api.inputs import Input


class RegisterIn(Input):
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=20, description="Indian mobile, e.g. +919845012345")
    password: str = Field(max_length=256)
    name: str = Field(default="", max_length=200)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return identifiers.normalize_email(v) if v else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return identifiers.normalize_phone(v) if v else None

    @model_validator(mode="after")
    def _one_identifier(self) -> RegisterIn:
        if not self.email and not self.phone:
            raise ValueError("give an email address, a mobile number, or both")
        return self


class RegisterVerifyIn(Input):
    signup: str = Field(min_length=16, max_length=200, description="the `signup` token the sign-up answered")
    code: str = Field(pattern=r"^[0-9]{6}$", description="the six-digit code sent to the email or phone")


class AccountRead(BaseModel):
    """An account and its verified sign-in identifiers."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"id": "0b9a3c1e-54d2-4f7e-9a61-2f4c8d0e7b15", "email": "asha@example.com", "phone": None}
            ]
        }
    )

    id: uuid.UUID
    email: str | None
    phone: str | None


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str


class SignupAccepted(Accepted):
    signup: str = Field(
        description="secret token of this sign-up: send it with the code to POST /v1/auth/register/verify"
    )


class LoginIn(Input):
    identifier: str = Field(min_length=3, max_length=320, description="email address or mobile number")
    password: str = Field(max_length=256)


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str
    session_id: uuid.UUID


class TwoFactorChallenge(BaseModel):
    two_factor_required: Literal[True] = True
    challenge: str = Field(description="pass back to POST /v1/auth/login/2fa within 5 minutes")
    methods: list[str]


class LoginTwoFactorIn(Input):
    challenge: str = Field(max_length=2000)
    method: Literal["totp", "sms", "recovery"]
    code: str = Field(min_length=4, max_length=20)


class ChallengeIn(Input):
    challenge: str = Field(max_length=2000)


class RefreshIn(Input):
    refresh_token: str = Field(max_length=200)


class PasswordChangeIn(Input):
    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


class ResetRequestIn(Input):
    identifier: str = Field(min_length=3, max_length=320)


class ResetIn(Input):
    token: str = Field(max_length=200)
    new_password: str = Field(max_length=256)


class ContactVerifyIn(Input):
    kind: Literal["email", "phone"]
    code: str = Field(pattern=r"^[0-9]{6}$")


class ContactUpdateIn(Input):
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=20)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return identifiers.normalize_email(v) if v else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return identifiers.normalize_phone(v) if v else None


class MeRead(BaseModel):
    id: uuid.UUID
    email: str | None
    phone: str | None
    name: str
    roles: list[str]
    permissions: list[str]
    denied: list[str]
    scopes: list[str]
    two_factor_enabled: bool
    two_factor_required: bool


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool = False


class RevokeAllIn(Input):
    keep_current: StrictBool = False  # `true` or `false`: 0 and "no" are refused, as documented
