"""Roles, grants and scopes: reading effective access and changing it without escalation.

Called by the access router (grant/revoke), the accounts service (default role at sign-up) and
the per-process permission cache (`load_snapshot`). Every change bumps the user's
`grants_version` and writes an audit entry in the caller's transaction; the caller publishes the
cache invalidation after commit (`access.cache.publish`). Past 400 lines because the
escalation rules (who may grant what, in which scope) must be read together with every change
they guard; the pure half of them is `access.policy`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.access import policy
from kirana.api.access.cache import Snapshot
from kirana.api.access.models import Role, RoleParent, UserPermission, UserRole, UserScope
from kirana.api.access.principal import Principal, matches
from kirana.api.accounts.models import AuthSession, User
from kirana.api.audit import service as audit
from kirana.api.db.base import utcnow
from kirana.api.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from kirana.api.twofactor.models import TotpCredential

OWNER = "owner"
DEFAULT_ROLE = "customer"
_OWNERS_LOCK = 0x6B69_7261_6E61_6F77


@dataclass(frozen=True)
class RoleGraph:
    permissions: dict[str, tuple[str, ...]]
    parents: dict[str, tuple[str, ...]]


async def role_graph(session: AsyncSession) -> RoleGraph:
    """Every role's permissions and parents, as `policy` reads them."""
    perms = {r.name: tuple(r.permissions) for r in (await session.scalars(select(Role))).all()}
    parents: dict[str, list[str]] = {}
    for rp in (await session.scalars(select(RoleParent))).all():
        parents.setdefault(rp.role, []).append(rp.parent)
    return RoleGraph(perms, {k: tuple(v) for k, v in parents.items()})


async def list_roles(session: AsyncSession) -> list[Role]:
    """Every role, by name."""
    return list((await session.scalars(select(Role).order_by(Role.name))).all())


async def grants_of(session: AsyncSession, user_id: uuid.UUID) -> list[policy.Grant]:
    """The user's role and permission grants (expired ones included; `policy.effective` drops them)."""
    roles = (await session.scalars(select(UserRole).where(UserRole.user_id == user_id))).all()
    perms = (await session.scalars(select(UserPermission).where(UserPermission.user_id == user_id))).all()
    return [policy.Grant("role", r.role, r.expires_at) for r in roles] + [
        policy.Grant(p.effect, p.permission, p.expires_at) for p in perms
    ]


async def load_snapshot(
    session: AsyncSession, *, user_id: uuid.UUID, ttl_s: float, recent_revoked_s: float
) -> Snapshot | None:
    """The user's effective access now, or None for an unknown or deactivated account."""
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    now = utcnow()
    graph = await role_graph(session)
    eff = policy.effective(
        await grants_of(session, user_id), role_perms=graph.permissions, parents=graph.parents, now=now
    )
    scopes = frozenset(
        (await session.scalars(select(UserScope.scope).where(UserScope.user_id == user_id))).all()
    )
    totp = await session.scalar(select(TotpCredential.confirmed_at).where(TotpCredential.user_id == user_id))
    two_factor = totp is not None or user.sms_2fa_enabled
    sessions: dict[uuid.UUID, float | None] = {}
    revoked: set[uuid.UUID] = set()
    horizon = now - timedelta(seconds=recent_revoked_s)
    rows = await session.execute(
        select(
            AuthSession.id, AuthSession.revoked_at, AuthSession.expires_at, AuthSession.two_factor_at
        ).where(AuthSession.user_id == user_id, AuthSession.expires_at > horizon)
    )
    expires = time.time() + ttl_s
    for sid, revoked_at, session_expires, two_factor_at in rows:
        if revoked_at is None and session_expires > now:
            sessions[sid] = two_factor_at.timestamp() if two_factor_at else None
            expires = min(expires, session_expires.timestamp())
        else:
            revoked.add(sid)
    if eff.valid_until is not None:
        expires = min(expires, eff.valid_until.timestamp())
    return Snapshot(
        user_id=user_id,
        version=user.grants_version,
        roles=eff.roles,
        permissions=eff.permissions,
        denied=eff.denied,
        scopes=scopes,
        two_factor_enabled=two_factor,
        needs_two_factor=(not two_factor) and policy.needs_two_factor(eff.permissions, eff.denied),
        sessions=sessions,
        revoked_sessions=frozenset(revoked),
        expires=expires,
    )


async def bump_version(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Bump the user's `grants_version` (so every process reloads its access); returns the new one."""
    version = await session.scalar(
        update(User)
        .where(User.id == user_id)
        .values(grants_version=User.grants_version + 1)
        .returning(User.grants_version)
    )
    if version is None:
        raise NotFound("no such user")
    return int(version)


async def assign_default_role(session: AsyncSession, *, user_id: uuid.UUID) -> None:
    """Give a new account the default role (sign-up), in the caller's transaction."""
    session.add(UserRole(user_id=user_id, role=DEFAULT_ROLE, granted_at=utcnow()))
    await session.flush()


async def _user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    return user


def _refuse_escalation(granter: Principal, permissions: frozenset[str], what: str) -> None:
    missing = policy.missing_to_grant(granter, permissions)
    if missing:
        raise PermissionDenied(
            f"you cannot {what}: it carries permissions you do not hold",
            extra={"missing": missing},
        )


def _refuse_self(granter: Principal, user_id: uuid.UUID, what: str) -> None:
    """Nobody widens their own access (e.g. re-granting an expiring role without expiry)."""
    if granter.user_id == user_id:
        raise PermissionDenied(
            f"you cannot {what} for yourself; ask another administrator", extra={"reason": "self-grant"}
        )


async def _scopes_of(session: AsyncSession, user_id: uuid.UUID) -> frozenset[str]:
    return frozenset(
        (await session.scalars(select(UserScope.scope).where(UserScope.user_id == user_id))).all()
    )


async def _ensure_within_scopes(session: AsyncSession, granter: Principal, user_id: uuid.UUID) -> None:
    """A scoped granter acts only on users confined to (a part of) its own scopes. An unscoped
    user is unrestricted, so beyond any scoped granter: powers given to them would reach every
    store, and narrowing them is not a store manager's call either."""
    if not granter.scopes:
        return
    target = await _scopes_of(session, user_id)
    if not target or not target <= granter.scopes:
        raise PermissionDenied("this user reaches beyond your scopes", extra={"reason": "out-of-scope"})


async def _granter_until(
    session: AsyncSession, granter: Principal, permissions: frozenset[str], graph: RoleGraph
) -> datetime | None:
    """When the granter's own hold on `permissions` ends (None: it is permanent). For each
    permission, the latest expiry among the granter's active grants that cover it; then the
    earliest of those."""
    now = utcnow()
    active = [g for g in await grants_of(session, granter.user_id) if g.active(now)]
    covers: list[tuple[frozenset[str], datetime | None]] = []
    for g in active:
        if g.kind == "role":
            covers.append((policy.role_permissions(g.value, graph.permissions, graph.parents), g.expires_at))
        elif g.kind == "allow":
            covers.append((frozenset({g.value}), g.expires_at))
    until: datetime | None = None
    for p in permissions:
        ends = [exp for perms, exp in covers if any(matches(x, p) for x in perms)]
        if not ends or None in ends:
            continue
        latest = max(e for e in ends if e is not None)
        until = latest if until is None else min(until, latest)
    return until


def _cap(expires_at: datetime | None, until: datetime | None) -> datetime | None:
    """A grant lasts no longer than the granter's own hold on what it hands out."""
    if until is None:
        return expires_at
    return until if expires_at is None or expires_at > until else expires_at


async def _flush_unique(session: AsyncSession, message: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == "23505":
            raise Conflict(message) from None
        raise


async def _ensure_other_owner(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Refuse to leave the shop without an active, permanent owner."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _OWNERS_LOCK})
    others = await session.scalar(
        select(func.count())
        .select_from(UserRole)
        .join(User, User.id == UserRole.user_id)
        .where(
            UserRole.role == OWNER,
            UserRole.user_id != user_id,
            UserRole.expires_at.is_(None),
            User.is_active.is_(True),
        )
    )
    if not others:
        raise Conflict("the last owner cannot be removed; make someone else owner first")


async def _is_permanent_owner(session: AsyncSession, user_id: uuid.UUID) -> bool:
    row = await session.scalar(
        select(UserRole.id).where(
            UserRole.user_id == user_id, UserRole.role == OWNER, UserRole.expires_at.is_(None)
        )
    )
    return row is not None


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput("expires_at needs a time zone")
        if expires_at <= utcnow():
            raise InvalidInput("expires_at is in the past")


async def grant_role(
    session: AsyncSession,
    ctx: audit.AuditContext,
    *,
    granter: Principal,
    user_id: uuid.UUID,
    role: str,
    expires_at: datetime | None = None,
) -> int:
    """Give `role` (replacing an earlier grant of it); returns the user's new grants version."""
    _check_expiry(expires_at)
    _refuse_self(granter, user_id, f"grant {role}")
    await _user(session, user_id)
    graph = await role_graph(session)
    if role not in graph.permissions:
        raise NotFound(f"no role named {role}")
    perms = policy.role_permissions(role, graph.permissions, graph.parents)
    _refuse_escalation(granter, perms, f"grant {role}")
    await _ensure_within_scopes(session, granter, user_id)
    expires_at = _cap(expires_at, await _granter_until(session, granter, perms, graph))
    existing = await session.scalar(
        select(UserRole).where(UserRole.user_id == user_id, UserRole.role == role)
    )
    before = None
    if existing is not None:
        before = {"role": role, "expires_at": _iso(existing.expires_at)}
        if role == OWNER and existing.expires_at is None and expires_at is not None:
            await _ensure_other_owner(session, user_id)
        existing.expires_at = expires_at
        existing.granted_by = granter.user_id
        existing.granted_at = utcnow()
    else:
        session.add(
            UserRole(
                user_id=user_id,
                role=role,
                granted_by=granter.user_id,
                granted_at=utcnow(),
                expires_at=expires_at,
            )
        )
    await _flush_unique(session, f"the role {role} was changed at the same time; try again")
    version = await bump_version(session, user_id)
    await audit.record(
        session,
        ctx,
        action="access.role_granted",
        target_type="user",
        target_id=user_id,
        before=before,
        after={"role": role, "expires_at": _iso(expires_at)},
    )
    return version


async def revoke_role(
    session: AsyncSession, ctx: audit.AuditContext, *, granter: Principal, user_id: uuid.UUID, role: str
) -> int:
    """Take a role away, refusing what would widen the granter's own power; audited. Returns the new grants
    version."""
    existing = await session.scalar(
        select(UserRole).where(UserRole.user_id == user_id, UserRole.role == role)
    )
    if existing is None:
        raise NotFound(f"the user does not have the role {role}")
    graph = await role_graph(session)
    _refuse_escalation(
        granter, policy.role_permissions(role, graph.permissions, graph.parents), f"revoke {role}"
    )
    await _ensure_within_scopes(session, granter, user_id)
    if role == OWNER:
        await _ensure_other_owner(session, user_id)
    before = {"role": role, "expires_at": _iso(existing.expires_at)}
    await session.delete(existing)
    await session.flush()
    version = await bump_version(session, user_id)
    await audit.record(
        session, ctx, action="access.role_revoked", target_type="user", target_id=user_id, before=before
    )
    return version


def _normalize_permission(permission: str) -> str:
    p = permission.strip().lower()
    if p == "*":
        p = "*:*"
    if not policy.valid_permission(p):
        raise InvalidInput(f"{permission!r} is not a resource:action permission")
    return p


async def grant_permission(
    session: AsyncSession,
    ctx: audit.AuditContext,
    *,
    granter: Principal,
    user_id: uuid.UUID,
    permission: str,
    effect: str,
    expires_at: datetime | None = None,
) -> tuple[uuid.UUID, int]:
    """Allow or deny one permission directly; returns (grant id, new grants version)."""
    _check_expiry(expires_at)
    if effect not in ("allow", "deny"):
        raise InvalidInput("effect must be allow or deny")
    perm = _normalize_permission(permission)
    if effect == "allow":  # denying yourself something (stepping down) widens nothing
        _refuse_self(granter, user_id, f"allow {perm}")
    await _user(session, user_id)
    # Denying is also a power over others: only over what you hold yourself.
    _refuse_escalation(granter, frozenset({perm}), f"{effect} {perm}")
    await _ensure_within_scopes(session, granter, user_id)
    # An allow or a deny lasts no longer than the granter's own hold on the permission: a
    # temporary admin's powers over others, restrictions included, end with their own.
    graph = await role_graph(session)
    expires_at = _cap(expires_at, await _granter_until(session, granter, frozenset({perm}), graph))
    if effect == "deny" and await _is_permanent_owner(session, user_id):
        await _ensure_other_owner(session, user_id)
    existing = await session.scalar(
        select(UserPermission).where(
            UserPermission.user_id == user_id,
            UserPermission.permission == perm,
            UserPermission.effect == effect,
        )
    )
    if existing is None:
        existing = UserPermission(user_id=user_id, permission=perm, effect=effect, granted_at=utcnow())
        session.add(existing)
    existing.granted_by = granter.user_id
    existing.expires_at = expires_at
    await _flush_unique(session, f"the grant of {perm} was changed at the same time; try again")
    version = await bump_version(session, user_id)
    await audit.record(
        session,
        ctx,
        action=f"access.permission_{'granted' if effect == 'allow' else 'denied'}",
        target_type="user",
        target_id=user_id,
        after={"permission": perm, "effect": effect, "expires_at": _iso(expires_at)},
    )
    return existing.id, version


async def revoke_permission(
    session: AsyncSession,
    ctx: audit.AuditContext,
    *,
    granter: Principal,
    user_id: uuid.UUID,
    grant_id: uuid.UUID,
) -> int:
    """Remove a direct allow or deny grant, refusing escalation (lifting a deny on oneself included);
    audited. Returns the new grants version."""
    existing = await session.get(UserPermission, grant_id)
    if existing is None or existing.user_id != user_id:
        raise NotFound("no such permission grant")
    if existing.effect == "deny":  # lifting a deny on yourself would widen your access
        _refuse_self(granter, user_id, f"lift the deny of {existing.permission}")
    _refuse_escalation(granter, frozenset({existing.permission}), f"revoke {existing.permission}")
    await _ensure_within_scopes(session, granter, user_id)
    before = {
        "permission": existing.permission,
        "effect": existing.effect,
        "expires_at": _iso(existing.expires_at),
    }
    await session.delete(existing)
    await session.flush()
    version = await bump_version(session, user_id)
    await audit.record(
        session, ctx, action="access.permission_revoked", target_type="user", target_id=user_id, before=before
    )
    return version


async def set_scopes(
    session: AsyncSession,
    ctx: audit.AuditContext,
    *,
    granter: Principal,
    user_id: uuid.UUID,
    scopes: list[str],
) -> int:
    """Replace the user's scopes (`store:<id>`, `region:<id>`) with ones within the granter's own; audited.
    Returns the new grants version."""
    wanted = sorted({s.strip().lower() for s in scopes})
    bad = [s for s in wanted if not policy.SCOPE_RE.match(s)]
    if bad:
        raise InvalidInput(f"scopes look like store:<id> or region:<id>; got {', '.join(bad)}")
    if not policy.scopes_within(granter.scopes, wanted):
        raise PermissionDenied("you can only hand out scopes within your own")
    await _user(session, user_id)
    current = sorted(
        (await session.scalars(select(UserScope.scope).where(UserScope.user_id == user_id))).all()
    )
    if granter.scopes and (not current or not set(current) <= granter.scopes):
        # An unscoped user is unrestricted: beyond any scoped granter.
        raise PermissionDenied("this user reaches beyond your scopes", extra={"reason": "out-of-scope"})
    await session.execute(delete(UserScope).where(UserScope.user_id == user_id))
    session.add_all(UserScope(user_id=user_id, scope=s) for s in wanted)
    await session.flush()
    version = await bump_version(session, user_id)
    await audit.record(
        session,
        ctx,
        action="access.scopes_set",
        target_type="user",
        target_id=user_id,
        before={"scopes": current},
        after={"scopes": wanted},
    )
    return version


async def put_role(
    session: AsyncSession,
    ctx: audit.AuditContext,
    *,
    granter: Principal,
    name: str,
    permissions: list[str],
    parents: list[str],
    description: str = "",
) -> None:
    """Create or redefine a role. Refuses cycles and permissions the granter does not hold.
    Role definitions apply to every store, so scoped staff cannot change them."""
    if not policy.ROLE_NAME_RE.match(name):
        raise InvalidInput(
            "a role name is lower-case letters, digits and _, starting with a letter, at most 64"
        )
    if granter.scopes:
        raise PermissionDenied("role definitions apply to every store; scoped staff cannot change them")
    perms = sorted({_normalize_permission(p) for p in permissions})
    graph = await role_graph(session)
    unknown = [p for p in parents if p not in graph.permissions]
    if unknown:
        raise InvalidInput(f"unknown parent roles: {', '.join(unknown)}")
    new_parents = dict(graph.parents)
    new_parents[name] = tuple(sorted(set(parents)))
    cycle = policy.find_cycle(new_parents)
    if cycle:
        raise InvalidInput(f"roles would inherit in a circle: {' -> '.join(cycle)}")
    new_perms = dict(graph.permissions)
    new_perms[name] = tuple(perms)
    _refuse_escalation(granter, policy.role_permissions(name, new_perms, new_parents), f"define role {name}")
    role = await session.get(Role, name)
    before = None
    if role is None:
        role = Role(name=name, description=description, permissions=perms)
        session.add(role)
    else:
        if role.name == OWNER:
            raise PermissionDenied("the owner role cannot be redefined")
        before = {"permissions": list(role.permissions), "parents": list(graph.parents.get(name, ()))}
        role.permissions = perms
        role.description = description or role.description
    await _flush_unique(session, f"the role {name} was defined at the same time; try again")
    await session.execute(delete(RoleParent).where(RoleParent.role == name))
    session.add_all(RoleParent(role=name, parent=p) for p in new_parents[name])
    await session.flush()
    await audit.record(
        session,
        ctx,
        action="access.role_defined",
        target_type="role",
        target_id=name,
        before=before,
        after={"permissions": perms, "parents": list(new_parents[name])},
    )


@dataclass(frozen=True)
class UserAccess:
    user_id: uuid.UUID
    roles: list[UserRole]
    permissions: list[UserPermission]
    scopes: list[str]
    snapshot: Snapshot


async def user_access(session: AsyncSession, *, user_id: uuid.UUID) -> UserAccess:
    """What the user may do now (roles, grants, effective permissions, scopes), for the access API."""
    snap = await load_snapshot(session, user_id=user_id, ttl_s=0, recent_revoked_s=0)
    if snap is None:
        raise NotFound("no such user")
    roles = list(
        (
            await session.scalars(select(UserRole).where(UserRole.user_id == user_id).order_by(UserRole.role))
        ).all()
    )
    perms = list(
        (
            await session.scalars(
                select(UserPermission)
                .where(UserPermission.user_id == user_id)
                .order_by(UserPermission.permission)
            )
        ).all()
    )
    return UserAccess(user_id, roles, perms, sorted(snap.scopes), snap)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
