"""Users, sessions and their tokens in the database. Typed, keyword-only, no HTTP, no commit.

Called by `accounts.flows` (which owns the transactions, rate limits and cache invalidation)
and by the seeders.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.accounts import tokens
from kirana.api.accounts.models import AuthSession, PasswordResetToken, RefreshToken, User
from kirana.api.db.base import utcnow


async def find_user(session: AsyncSession, *, kind: str, value: str) -> User | None:
    """The account with this normalised e-mail (`kind` "email") or phone, if any."""
    column = User.email if kind == "email" else User.phone
    user: User | None = await session.scalar(select(User).where(column == value))
    return user


async def create_user(
    session: AsyncSession, *, email: str | None, phone: str | None, password_hash: str, name: str
) -> User | None:
    """The new user, or None when the email or phone is already taken."""
    user = User(
        email=email, phone=phone, password_hash=password_hash, name=name, password_changed_at=utcnow()
    )
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError:
        return None
    return user


async def start_session(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    ttl: timedelta,
    ip: str | None,
    user_agent: str | None,
    two_factor_at: datetime | None,
) -> tuple[AuthSession, str]:
    """A new signed-in session and its first refresh token (returned in clear, stored hashed)."""
    now = utcnow()
    auth = AuthSession(
        user_id=user_id,
        created_at=now,
        last_used_at=now,
        expires_at=now + ttl,
        ip=ip,
        user_agent=(user_agent or "")[:300] or None,
        two_factor_at=two_factor_at,
    )
    session.add(auth)
    await session.flush()
    return auth, await _new_refresh(session, auth)


async def _new_refresh(session: AsyncSession, auth: AuthSession) -> str:
    token, token_hash = tokens.new_opaque_token()
    session.add(
        RefreshToken(
            session_id=auth.id, token_hash=token_hash, created_at=utcnow(), expires_at=auth.expires_at
        )
    )
    await session.flush()
    return token


class RefreshResult(StrEnum):
    ok = "ok"
    invalid = "invalid"
    reused = "reused"


@dataclass(frozen=True)
class Rotation:
    result: RefreshResult
    session: AuthSession | None = None
    refresh_token: str | None = None


async def rotate_refresh(session: AsyncSession, *, token: str) -> Rotation:
    """Spend a refresh token for a new one. A token spent twice means it leaked: the caller
    revokes the whole session (the token family)."""
    row = (
        await session.execute(
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == tokens.digest(token))
            .with_for_update()
        )
    ).first()
    if row is None:
        return Rotation(RefreshResult.invalid)
    refresh, auth = row
    now = utcnow()
    if auth.revoked_at is not None or auth.expires_at <= now:
        return Rotation(RefreshResult.invalid, auth)
    if refresh.used_at is not None:
        return Rotation(RefreshResult.reused, auth)
    if refresh.expires_at <= now:
        return Rotation(RefreshResult.invalid, auth)
    refresh.used_at = now
    auth.last_used_at = now
    return Rotation(RefreshResult.ok, auth, await _new_refresh(session, auth))


async def revoke_sessions(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    reason: str,
    only: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Revoke one session (`only`) or all but `keep`; returns the ids revoked."""
    stmt = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if only is not None:
        stmt = stmt.where(AuthSession.id == only)
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    result = await session.execute(
        stmt.values(revoked_at=utcnow(), revoke_reason=reason).returning(AuthSession.id)
    )
    return list(result.scalars().all())


async def list_sessions(session: AsyncSession, *, user_id: uuid.UUID) -> list[AuthSession]:
    """The user's live sessions (not revoked, not expired), most recently used first."""
    now = utcnow()
    rows = await session.scalars(
        select(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None), AuthSession.expires_at > now)
        .order_by(AuthSession.last_used_at.desc())
    )
    return list(rows.all())


async def mark_strong_auth(session: AsyncSession, *, session_id: uuid.UUID) -> None:
    """Record a strong authentication (2FA, or the password on a step-up) in this session now."""
    await session.execute(
        update(AuthSession).where(AuthSession.id == session_id).values(two_factor_at=utcnow())
    )


async def create_reset_token(session: AsyncSession, *, user_id: uuid.UUID, ttl: timedelta) -> str:
    """A single-use reset token; earlier unused ones stop working."""
    now = utcnow()
    await session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )
    token, token_hash = tokens.new_opaque_token()
    session.add(
        PasswordResetToken(user_id=user_id, token_hash=token_hash, created_at=now, expires_at=now + ttl)
    )
    await session.flush()
    return token


async def consume_reset_token(session: AsyncSession, *, token: str) -> uuid.UUID | None:
    """Spend a password-reset token once: the user it was issued to, or None when it is unknown, used or
    expired."""
    now = utcnow()
    user_id: uuid.UUID | None = await session.scalar(
        update(PasswordResetToken)
        .where(
            PasswordResetToken.token_hash == tokens.digest(token),
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(PasswordResetToken.user_id)
    )
    return user_id


async def find_conflict(session: AsyncSession, *, user: User) -> bool:
    """Would `user`'s email or phone collide with another account?"""
    clauses = []
    if user.email:
        clauses.append(User.email == user.email)
    if user.phone:
        clauses.append(User.phone == user.phone)
    if not clauses:
        return False
    from sqlalchemy import or_

    other = await session.scalar(select(User.id).where(User.id != user.id, or_(*clauses)).limit(1))
    return other is not None
