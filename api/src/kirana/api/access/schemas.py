"""Request and response bodies of the access-administration routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kirana.api.access import policy
from kirana.api.inputs import Input


def _name(pattern: str, max_length: int, description: str, example: str) -> Any:
    """A string field held to `pattern` in the document as on the server."""
    return Field(pattern=pattern, max_length=max_length, description=description, examples=[example])


RoleName = Annotated[
    str,
    _name(
        policy.ROLE_NAME_RE.pattern,
        64,
        "Lower-case letters, digits and _, starting with a letter.",
        "store_manager",
    ),
]
Permission = Annotated[
    str,
    _name(
        policy.PERMISSION_INPUT_RE.pattern,
        100,
        "`resource:action`, either part may be `*`; `*` alone is every permission.",
        "orders:read",
    ),
]
Scope = Annotated[str, _name(policy.SCOPE_RE.pattern, 70, "`store:<id>` or `region:<id>`.", "store:blr-1")]


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
