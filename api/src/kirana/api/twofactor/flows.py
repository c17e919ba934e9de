"""Two-factor flows: enrolment, verifying a second factor (login and step-up), disabling.

Called by the two-factor and accounts routers. Owns transactions, the 2FA lockout, audit
entries for failures (in their own transaction) and the permission-cache invalidation.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.access import service as access
from kirana.api.access.principal import Principal
from kirana.api.access.runtime import AccessRuntime
from kirana.api.accounts import passwords
from kirana.api.accounts import service as accounts
from kirana.api.accounts.models import User
from kirana.api.audit import service as audit
from kirana.api.db.base import utcnow
from kirana.api.errors import InvalidInput, InvalidState, NotFound, Unauthorized
from kirana.api.ratelimit import limiter
from kirana.api.twofactor import service as twofactor

LOCK = limiter.Lockout("2fa", free=5, base_s=60, cap_s=3600)
PER_USER = limiter.Limit("2fa-user", 20, 900)


def mask(phone: str) -> str:
    return phone[:3] + "*" * max(0, len(phone) - 7) + phone[-4:]


async def methods_of(session: AsyncSession, user: User) -> list[str]:
    out = []
    if await twofactor.totp_enabled(session, user_id=user.id):
        out += ["totp", "recovery"]
    if user.sms_2fa_enabled and user.phone:
        out.append("sms")
    return out


async def check_second_factor(
    rt: AccessRuntime, ctx: audit.AuditContext, *, user: User, method: str, code: str, purpose: str
) -> None:
    """Verify one second factor or raise (401, or 429 once locked out). On success the caller's
    transaction is not involved: TOTP steps and recovery codes are spent in their own."""
    await limiter.ensure_unlocked(rt.redis, LOCK, str(user.id))
    await limiter.hit(rt.redis, PER_USER, str(user.id))
    ok = False
    async with rt.db.session() as session:
        if method not in await methods_of(session, user):
            ok = False
        elif method == "totp":
            ok = await twofactor.verify_totp(session, rt.box, user_id=user.id, code=code)
        elif method == "recovery":
            ok = await twofactor.use_recovery_code(session, rt.box, user_id=user.id, code=code)
        elif method == "sms":
            ok = await twofactor.verify_sms_code(
                rt.redis, rt.box, user_id=user.id, purpose=purpose, code=code
            )
        if ok:
            await audit.record(
                session,
                ctx.as_actor(user.id),
                action=f"2fa.{purpose}",
                target_type="user",
                target_id=user.id,
                after={"method": method},
            )
    if not ok:
        await limiter.record_failure(rt.redis, LOCK, str(user.id))
        await audit.record_now(
            rt.db,
            ctx.as_actor(user.id),
            action=f"2fa.{purpose}",
            outcome="failed",
            target_type="user",
            target_id=user.id,
            after={"method": method},
        )
        raise Unauthorized("the code is not valid (or was already used)")
    await limiter.record_success(rt.redis, LOCK, str(user.id))


async def send_sms(
    rt: AccessRuntime, ctx: audit.AuditContext, *, user: User, purpose: str, phone: str | None = None
) -> str:
    to = phone or user.phone
    if not to:
        raise InvalidState("the account has no mobile number")
    await twofactor.send_sms_code(
        rt.redis,
        rt.box,
        rt.notifier.sms,
        user_id=user.id,
        phone=to,
        purpose=purpose,
        daily_cap=rt.settings.sms.daily_cap,
        ip=ctx.ip,
    )
    return mask(to)


async def _user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    return user


async def load_user(rt: AccessRuntime, user_id: uuid.UUID) -> User:
    async with rt.db.session() as session:
        return await _user(session, user_id)


async def begin_totp(rt: AccessRuntime, ctx: audit.AuditContext, principal: Principal) -> twofactor.Enrolment:
    async with rt.db.session() as session:
        user = await _user(session, principal.user_id)
        enrolment = await twofactor.begin_totp(
            session, rt.box, user_id=user.id, account_name=user.email or user.phone or str(user.id)
        )
        await audit.record(
            session,
            ctx.as_actor(user.id),
            action="2fa.totp_enrol_started",
            target_type="user",
            target_id=user.id,
        )
    return enrolment


async def confirm_totp(
    rt: AccessRuntime, ctx: audit.AuditContext, principal: Principal, code: str
) -> list[str]:
    await limiter.ensure_unlocked(rt.redis, LOCK, str(principal.user_id))
    async with rt.db.session() as session:
        codes = await twofactor.confirm_totp(session, rt.box, user_id=principal.user_id, code=code)
        if codes is not None:
            # Enrolling is not a step-up: the route already demanded one (else a stolen token
            # could enrol the attacker's app and pass every sensitive check).
            version = await access.bump_version(session, principal.user_id)
            await audit.record(
                session,
                ctx.as_actor(principal.user_id),
                action="2fa.totp_enabled",
                target_type="user",
                target_id=principal.user_id,
            )
    if codes is None:
        await limiter.record_failure(rt.redis, LOCK, str(principal.user_id))
        raise InvalidInput("the code does not match; check the app's clock and try the next code")
    await rt.invalidate(principal.user_id, version)
    return codes


async def enable_sms(rt: AccessRuntime, ctx: audit.AuditContext, principal: Principal, code: str) -> None:
    user = await load_user(rt, principal.user_id)
    if not user.phone:
        raise InvalidState("add a mobile number first")
    await check_second_factor_sms_enrol(rt, ctx, user=user, code=code)
    async with rt.db.session() as session:
        db_user = await _user(session, user.id)
        db_user.sms_2fa_enabled = True
        version = await access.bump_version(session, user.id)
        await audit.record(
            session, ctx.as_actor(user.id), action="2fa.sms_enabled", target_type="user", target_id=user.id
        )
    await rt.invalidate(user.id, version)


async def check_second_factor_sms_enrol(
    rt: AccessRuntime, ctx: audit.AuditContext, *, user: User, code: str
) -> None:
    await limiter.ensure_unlocked(rt.redis, LOCK, str(user.id))
    if not await twofactor.verify_sms_code(rt.redis, rt.box, user_id=user.id, purpose="enrol", code=code):
        await limiter.record_failure(rt.redis, LOCK, str(user.id))
        await audit.record_now(
            rt.db,
            ctx.as_actor(user.id),
            action="2fa.sms_enrol",
            outcome="failed",
            target_type="user",
            target_id=user.id,
        )
        raise InvalidInput("the code does not match")


async def step_up(
    rt: AccessRuntime,
    ctx: audit.AuditContext,
    principal: Principal,
    *,
    method: str,
    code: str | None,
    password: str | None,
) -> datetime:
    """Prove it is still you; sensitive routes then pass for `step_up_ttl_s`."""
    if principal.session_id is None:
        raise Unauthorized("step-up needs a signed-in session")
    user = await load_user(rt, principal.user_id)
    async with rt.db.session() as session:
        available = await methods_of(session, user)
    if method == "password":
        if available:
            raise InvalidInput("this account has two-factor authentication: verify a code instead")
        await limiter.ensure_unlocked(rt.redis, LOCK, str(user.id))
        if not password or not passwords.verify(user.password_hash, password):
            await limiter.record_failure(rt.redis, LOCK, str(user.id))
            await audit.record_now(
                rt.db,
                ctx.as_actor(user.id),
                action="2fa.step_up",
                outcome="failed",
                target_type="user",
                target_id=user.id,
                after={"method": "password"},
            )
            raise Unauthorized("the password is incorrect")
    else:
        if not code:
            raise InvalidInput("give the code")
        await check_second_factor(rt, ctx, user=user, method=method, code=code, purpose="step_up")
    async with rt.db.session() as session:
        await accounts.mark_strong_auth(session, session_id=principal.session_id)
        version = await access.bump_version(session, user.id)
    await rt.invalidate(user.id, version)
    return utcnow()


async def disable(rt: AccessRuntime, ctx: audit.AuditContext, principal: Principal, *, password: str) -> None:
    """Turn every second factor off: needs the password now and a recent step-up (route)."""
    user = await load_user(rt, principal.user_id)
    await limiter.ensure_unlocked(rt.redis, LOCK, str(user.id))
    if not passwords.verify(user.password_hash, password):
        await limiter.record_failure(rt.redis, LOCK, str(user.id))
        raise Unauthorized("the password is incorrect")
    async with rt.db.session() as session:
        await twofactor.disable_totp(session, user_id=user.id)
        db_user = await _user(session, user.id)
        db_user.sms_2fa_enabled = False
        version = await access.bump_version(session, user.id)
        await audit.record(
            session, ctx.as_actor(user.id), action="2fa.disabled", target_type="user", target_id=user.id
        )
    await rt.invalidate(user.id, version)


async def regenerate_recovery(rt: AccessRuntime, ctx: audit.AuditContext, principal: Principal) -> list[str]:
    async with rt.db.session() as session:
        if not await twofactor.totp_enabled(session, user_id=principal.user_id):
            raise InvalidState("recovery codes come with an authenticator app; enrol one first")
        codes = await twofactor.new_recovery_codes(session, rt.box, user_id=principal.user_id)
        await audit.record(
            session,
            ctx.as_actor(principal.user_id),
            action="2fa.recovery_regenerated",
            target_type="user",
            target_id=principal.user_id,
        )
    return codes


async def status(rt: AccessRuntime, principal: Principal) -> tuple[bool, bool, int]:
    async with rt.db.session() as session:
        user = await _user(session, principal.user_id)
        totp = await twofactor.totp_enabled(session, user_id=user.id)
        left = await twofactor.recovery_codes_left(session, user_id=user.id)
    return totp, user.sms_2fa_enabled, left
