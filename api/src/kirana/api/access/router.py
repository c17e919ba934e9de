"""`/v1/access/*`: roles, and what each user is granted (roles, permissions, scopes).

Changing access needs `access:grant` (or `access:manage_roles` for role definitions) and a
recent step-up; nobody can hand out or take away more than they hold.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from kirana.api import errors
from kirana.api.access import policy
from kirana.api.access import service as access
from kirana.api.access.deps import Require, RuntimeDep, StepUp
from kirana.api.access.principal import Principal
from kirana.api.access.schemas import (
    Changed,
    PermissionGrantIn,
    PermissionGrantRead,
    RoleGrantIn,
    RoleGrantRead,
    RoleName,
    RolePut,
    RoleRead,
    ScopesIn,
    UserAccessRead,
)
from kirana.api.audit.deps import AuditCtx
from kirana.api.contract.document import raising
from kirana.api.deps import SessionDep

router = APIRouter(
    prefix="/v1/access",
    tags=["access"],
    responses=raising(errors.NotFound, errors.Conflict, errors.InvalidState),  # cycles, escalation
)


@router.get("/roles")
async def list_roles(session: SessionDep, _: Principal = Require("access:read")) -> list[RoleRead]:
    """Every role with its permissions and parents."""
    graph = await access.role_graph(session)
    rows = await access.list_roles(session)
    return [
        RoleRead(
            name=r.name,
            description=r.description,
            permissions=list(r.permissions),
            parents=list(graph.parents.get(r.name, ())),
            effective_permissions=sorted(policy.role_permissions(r.name, graph.permissions, graph.parents)),
        )
        for r in rows
    ]


@router.put("/roles/{name}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[StepUp])
async def put_role(
    name: RoleName,
    body: RolePut,
    rt: RuntimeDep,
    ctx: AuditCtx,
    me: Principal = Require("access:manage_roles"),
) -> Response:
    """Create or redefine a role (cycles and escalation refused); every cache is invalidated."""
    async with rt.db.session() as session:
        await access.put_role(
            session,
            ctx.as_actor(me.user_id),
            granter=me,
            name=name,
            permissions=body.permissions,
            parents=body.parents,
            description=body.description,
        )
    await rt.invalidate(None)
    return Response(status_code=204)


@router.get("/users/{user_id}")
async def user_access(
    user_id: uuid.UUID, session: SessionDep, _: Principal = Require("access:read")
) -> UserAccessRead:
    """A user's roles, direct grants, scopes and effective permissions."""
    ua = await access.user_access(session, user_id=user_id)
    return UserAccessRead(
        user_id=user_id,
        roles=[RoleGrantRead.model_validate(r) for r in ua.roles],
        permissions=[PermissionGrantRead.model_validate(p) for p in ua.permissions],
        scopes=ua.scopes,
        effective_roles=sorted(ua.snapshot.roles),
        effective_permissions=sorted(ua.snapshot.permissions),
        denied=sorted(ua.snapshot.denied),
    )


@router.post("/users/{user_id}/roles", dependencies=[StepUp])
async def grant_role(
    user_id: uuid.UUID,
    body: RoleGrantIn,
    rt: RuntimeDep,
    ctx: AuditCtx,
    me: Principal = Require("access:grant"),
) -> Changed:
    """Grant a role to a user (escalation beyond the granter's own refused)."""
    async with rt.db.session() as session:
        version = await access.grant_role(
            session,
            ctx.as_actor(me.user_id),
            granter=me,
            user_id=user_id,
            role=body.role,
            expires_at=body.expires_at,
        )
    await rt.invalidate(user_id, version)
    return Changed(user_id=user_id, grants_version=version)


@router.delete("/users/{user_id}/roles/{role}", dependencies=[StepUp])
async def revoke_role(
    user_id: uuid.UUID, role: RoleName, rt: RuntimeDep, ctx: AuditCtx, me: Principal = Require("access:grant")
) -> Changed:
    """Take a role away from a user."""
    async with rt.db.session() as session:
        version = await access.revoke_role(
            session, ctx.as_actor(me.user_id), granter=me, user_id=user_id, role=role
        )
    await rt.invalidate(user_id, version)
    return Changed(user_id=user_id, grants_version=version)


@router.post("/users/{user_id}/permissions", dependencies=[StepUp])
async def grant_permission(
    user_id: uuid.UUID,
    body: PermissionGrantIn,
    rt: RuntimeDep,
    ctx: AuditCtx,
    me: Principal = Require("access:grant"),
) -> dict[str, object]:
    """Grant (or deny) one permission to a user directly."""
    async with rt.db.session() as session:
        grant_id, version = await access.grant_permission(
            session,
            ctx.as_actor(me.user_id),
            granter=me,
            user_id=user_id,
            permission=body.permission,
            effect=body.effect,
            expires_at=body.expires_at,
        )
    await rt.invalidate(user_id, version)
    return {"id": str(grant_id), "user_id": str(user_id), "grants_version": version}


@router.delete("/users/{user_id}/permissions/{grant_id}", dependencies=[StepUp])
async def revoke_permission(
    user_id: uuid.UUID,
    grant_id: uuid.UUID,
    rt: RuntimeDep,
    ctx: AuditCtx,
    me: Principal = Require("access:grant"),
) -> Changed:
    """Remove one direct permission grant."""
    async with rt.db.session() as session:
        version = await access.revoke_permission(
            session, ctx.as_actor(me.user_id), granter=me, user_id=user_id, grant_id=grant_id
        )
    await rt.invalidate(user_id, version)
    return Changed(user_id=user_id, grants_version=version)


@router.put("/users/{user_id}/scopes", dependencies=[StepUp])
async def set_scopes(
    user_id: uuid.UUID, body: ScopesIn, rt: RuntimeDep, ctx: AuditCtx, me: Principal = Require("access:grant")
) -> Changed:
    """Limit a staff member to stores/regions (an empty list: unrestricted)."""
    async with rt.db.session() as session:
        version = await access.set_scopes(
            session, ctx.as_actor(me.user_id), granter=me, user_id=user_id, scopes=body.scopes
        )
    await rt.invalidate(user_id, version)
    return Changed(user_id=user_id, grants_version=version)
