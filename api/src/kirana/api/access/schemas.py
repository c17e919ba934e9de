"""Request and response bodies of the access-administration routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kirana.api.inputs import Input


class RoleRead(BaseModel):
    name: str
    description: str
    permissions: list[str]
    parents: list[str]
    effective_permissions: list[str]


class RolePut(Input):
    description: str = Field(default="", max_length=300)
    permissions: list[str] = Field(default_factory=list, max_length=200)
    parents: list[str] = Field(default_factory=list, max_length=20)


class RoleGrantIn(Input):
    role: str = Field(max_length=64)
    expires_at: datetime | None = None


class PermissionGrantIn(Input):
    permission: str = Field(max_length=100)
    effect: Literal["allow", "deny"] = "allow"
    expires_at: datetime | None = None


class ScopesIn(Input):
    scopes: list[str] = Field(max_length=100)


class RoleGrantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    role: str
    granted_by: uuid.UUID | None
    granted_at: datetime
    expires_at: datetime | None


class PermissionGrantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    permission: str
    effect: str
    granted_by: uuid.UUID | None
    granted_at: datetime
    expires_at: datetime | None


class UserAccessRead(BaseModel):
    user_id: uuid.UUID
    roles: list[RoleGrantRead]
    permissions: list[PermissionGrantRead]
    scopes: list[str]
    effective_roles: list[str]
    effective_permissions: list[str]
    denied: list[str]


class Changed(BaseModel):
    user_id: uuid.UUID
    grants_version: int
