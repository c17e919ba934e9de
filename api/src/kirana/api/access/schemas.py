"""Request and response bodies of the access-administration routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from kirana.api.access import policy
from kirana.api.inputs import Input

RoleName = Annotated[
    str,
    Field(
        pattern=policy.ROLE_NAME_RE.pattern,
        max_length=64,
        description="Lower-case letters, digits and _, starting with a letter.",
        examples=["store_manager"],
    ),
]
Permission = Annotated[
    str,
    Field(
        pattern=policy.PERMISSION_INPUT_RE.pattern,
        max_length=100,
        description="`resource:action`, either part may be `*`; `*` alone is every permission.",
        examples=["orders:read"],
    ),
]
Scope = Annotated[
    str,
    Field(
        pattern=policy.SCOPE_RE.pattern,
        max_length=70,
        description="`store:<id>` or `region:<id>`.",
        examples=["store:blr-1"],
    ),
]


class RoleRead(BaseModel):
    name: str
    description: str
    permissions: list[str]
    parents: list[str]
    effective_permissions: list[str]


class RolePut(Input):
    description: str = Field(default="", max_length=300)
    permissions: list[Permission] = Field(default_factory=list, max_length=200)
    parents: list[RoleName] = Field(default_factory=list, max_length=20)


class RoleGrantIn(Input):
    role: RoleName
    expires_at: datetime | None = None


class PermissionGrantIn(Input):
    permission: Permission
    effect: Literal["allow", "deny"] = "allow"
    expires_at: datetime | None = None


class ScopesIn(Input):
    scopes: list[Scope] = Field(max_length=100)


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
