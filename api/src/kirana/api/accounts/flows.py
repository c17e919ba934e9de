"""Account flows: sign-up (its codes in `accounts.signups`), sign-in (with a second factor), token
refresh, sign-out, password change and reset, contact changes. Called by the accounts router.

Each flow owns its transactions (failures are audited in a transaction of their own, since the
request's would roll back), applies the abuse limits, and publishes the permission-cache
invalidation after commit. Messages never reveal whether an account exists, and unknown
accounts cost the same password-hashing time as known ones. Past 400 lines because these
flows share the enumeration-safe wording, the limits and the audit pattern, which must not
drift between them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from kirana.api.access import service as access
from kirana.api.access.principal import Principal
from kirana.api.access.runtime import AccessRuntime
from kirana.api.accounts import identifiers, passwords, resets, signups
from kirana.api.accounts import service as accounts
from kirana.api.accounts.models import User
from kirana.api.audit import service as audit
from kirana.api.cart import service as carts
from kirana.api.db.base import utcnow
from kirana.api.errors import InvalidInput, RateLimited, Unauthorized
from kirana.api.ratelimit import limiter
from kirana.api.twofactor import flows as twofactor

# Failed passwords lock an identifier *from one client address*: a stranger guessing from
# elsewhere cannot lock the owner out. A much higher per-identifier cap still stops guessing
# spread over many addresses. Once the identifier names an account, failures also count
# against the account itself (`account_subject`), so its other identifiers (email and phone) get
# no fresh guesses. Only an identifier's own lock answers 429: a locked *account* answers every
# attempt as a wrong password (401, same hashing cost), so no answer and no Retry-After can
# tell a guesser that an email and a phone number belong to one account.
LOGIN_LOCK = limiter.Lockout("login", free=5, base_s=30, cap_s=3600)  # (identifier, ip)
LOGIN_IDENTIFIER_LOCK = limiter.Lockout("login-identifier", free=100, base_s=60, cap_s=3600)
LOGIN_IP = limiter.Limit("login-ip", 100, 900)
LOGIN_ACCOUNT = limiter.Limit("login-account", 20, 900)  # (identifier, ip)
REGISTER_IP = limiter.Limit("register-ip", 20, 3600)
RESET_ACCOUNT = limiter.Limit("reset-account", 3, 3600)
RESET_IP = limiter.Limit("reset-ip", 20, 3600)
MFA_CHALLENGE_TTL_S = 300
ALREADY_COMPLETED = "this sign-in was already completed; start again"
BAD_LOGIN = "the email/phone or password is incorrect"


def account_subject(user_id: uuid.UUID) -> str:
    """The lockout subject of an account, whichever identifier it was reached by."""
    return f"user:{user_id}"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str
    session_id: uuid.UUID


@dataclass(frozen=True)
class Challenge:
    challenge: str
    methods: list[str]


async def register(
    rt: AccessRuntime,
    ctx: audit.AuditContext,
    *,
    email: str | None,
    phone: str | None,
    password: str,
    name: str,
) -> str:
    """Start a sign-up and return its secret token: a code goes to each address
    (`accounts.signups`), and the account exists once one comes back. The caller sees the same
    answer, at the same cost, whether or not the email/phone was taken (the owner of a taken
    one is told, by the worker)."""
    await limiter.hit(rt.redis, REGISTER_IP, ctx.ip or "-")
    passwords.check_policy(password, identifiers=(email, phone))
    password_hash = passwords.hash_password(password)
    return await signups.request(rt, ctx, email=email, phone=phone, password_hash=password_hash, name=name)


async def open_session(
    rt: AccessRuntime,
    ctx: audit.AuditContext,
    *,
    user: User,
    second_factor: str | None,
    guest_cart_token: str | None = None,
) -> Tokens:
    async with rt.db.session() as session:
        if guest_cart_token:
            # The cart the shopper filled before signing in becomes theirs, in the same
            # transaction as the session: both happen or neither does.
            settings = rt.settings
            limits = carts.Limits(settings.cart_max_line_quantity, settings.cart_max_lines)
            await carts.merge_guest_cart(
                session, guest_token=guest_cart_token, user_id=user.id, limits=limits
            )
        auth, refresh = await accounts.start_session(
            session,
            user_id=user.id,
            ttl=timedelta(seconds=rt.settings.session_ttl_s),
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            two_factor_at=utcnow() if second_factor else None,
        )
        version = await access.bump_version(session, user.id)
        await audit.record(
            session,
            ctx.as_actor(user.id),
            action="auth.login",
            target_type="session",
            target_id=auth.id,
            after={"second_factor": second_factor},
        )
    await rt.invalidate(user.id, version)
    access_token, ttl = await rt.keys.issue_access(user_id=user.id, session_id=auth.id)
    return Tokens(access_token=access_token, expires_in=ttl, refresh_token=refresh, session_id=auth.id)


async def login(
    rt: AccessRuntime,
    ctx: audit.AuditContext,
    *,
    identifier: str,
    password: str,
    guest_cart_token: str | None = None,
) -> Tokens | Challenge:
    try:
        kind, value = identifiers.classify(identifier)
    except ValueError:
        kind, value = "unknown", identifier.strip().lower()
    ip = ctx.ip or "-"
    await limiter.hit(rt.redis, LOGIN_IP, ip)
    await limiter.ensure_unlocked(rt.redis, LOGIN_LOCK, value, ip)
    await limiter.ensure_unlocked(rt.redis, LOGIN_IDENTIFIER_LOCK, value)
    await limiter.hit(rt.redis, LOGIN_ACCOUNT, value, ip)
    user = None
    if kind != "unknown":
        async with rt.db.session() as session:
            user = await accounts.find_user(session, kind=kind, value=value)
    if user is None:
        passwords.verify_dummy(password)
        ok = False
    else:
        ok = passwords.verify(user.password_hash, password) and user.is_active
        ok = ok and not await _account_locked(rt, account_subject(user.id), ip)
    if not ok or user is None:
        locked_ms = await limiter.record_failure(rt.redis, LOGIN_LOCK, value, ip)
        locked_ms = max(locked_ms, await limiter.record_failure(rt.redis, LOGIN_IDENTIFIER_LOCK, value))
        if user is not None:
            subject = account_subject(user.id)
            locked_ms = max(locked_ms, await limiter.record_failure(rt.redis, LOGIN_LOCK, subject, ip))
            locked_ms = max(locked_ms, await limiter.record_failure(rt.redis, LOGIN_IDENTIFIER_LOCK, subject))
        await audit.record_now(
            rt.db,
            ctx.as_actor(user.id if user else None),
            action="auth.login",
            outcome="failed",
            target_type="user",
            target_id=user.id if user else None,
            after={"identifier": limiter.subject_key(value), "locked_for_s": locked_ms // 1000},
        )
        raise Unauthorized(BAD_LOGIN)
    await limiter.record_success(rt.redis, LOGIN_LOCK, value, ip)
    await limiter.record_success(rt.redis, LOGIN_IDENTIFIER_LOCK, value)
    await limiter.record_success(rt.redis, LOGIN_LOCK, account_subject(user.id), ip)
    await limiter.record_success(rt.redis, LOGIN_IDENTIFIER_LOCK, account_subject(user.id))
    if passwords.needs_rehash(user.password_hash):
        async with rt.db.session() as session:
            db_user = await session.get(User, user.id)
            if db_user is not None:
                db_user.password_hash = passwords.hash_password(password)
    async with rt.db.session() as session:
        methods = await twofactor.methods_of(session, user)
    if methods:
        token = await rt.keys.issue_purpose(purpose="mfa", subject=str(user.id), ttl_s=MFA_CHALLENGE_TTL_S)
        return Challenge(challenge=token, methods=methods)
    return await open_session(rt, ctx, user=user, second_factor=None, guest_cart_token=guest_cart_token)


async def _account_locked(rt: AccessRuntime, subject: str, ip: str) -> bool:
    """Whether the account is locked (from this address, or everywhere); never raised as 429."""
    for lock, parts in ((LOGIN_LOCK, (subject, ip)), (LOGIN_IDENTIFIER_LOCK, (subject,))):
        try:
            await limiter.ensure_unlocked(rt.redis, lock, *parts)
        except RateLimited:
            return True
    return False


async def _challenge_user(rt: AccessRuntime, challenge: str) -> tuple[User, str]:
    claims = await rt.keys.verify_purpose(challenge, purpose="mfa")
    user = await twofactor.load_user(rt, uuid.UUID(claims["sub"]))
    if not user.is_active:
        raise Unauthorized("sign in again")
    return user, str(claims["jti"])


async def login_send_sms(rt: AccessRuntime, ctx: audit.AuditContext, *, challenge: str) -> str:
    user, _ = await _challenge_user(rt, challenge)
    if not user.sms_2fa_enabled:
        raise InvalidInput("SMS codes are not enabled for this account")
    return await twofactor.send_sms(rt, ctx, user=user, purpose="login")


async def login_second_factor(
    rt: AccessRuntime,
    ctx: audit.AuditContext,
    *,
    challenge: str,
    method: str,
    code: str,
    guest_cart_token: str | None = None,
) -> Tokens:
    user, jti = await _challenge_user(rt, challenge)
    # A challenge completes one sign-in only. A completed one is refused before the code is
    # looked at, so a replay spends no recovery code or TOTP step; the claim after the check
    # settles two concurrent completions.
    done_key = f"kirana:mfa-done:{jti}"
    if await rt.redis.exists(done_key):
        raise Unauthorized(ALREADY_COMPLETED)
    await twofactor.check_second_factor(rt, ctx, user=user, method=method, code=code, purpose="login")
    if not await rt.redis.set(done_key, b"1", nx=True, ex=MFA_CHALLENGE_TTL_S + 60):
        raise Unauthorized(ALREADY_COMPLETED)
    return await open_session(rt, ctx, user=user, second_factor=method, guest_cart_token=guest_cart_token)


async def refresh(rt: AccessRuntime, ctx: audit.AuditContext, *, token: str) -> Tokens:
    async with rt.db.session() as session:
        rotation = await accounts.rotate_refresh(session, token=token)
        version = None
        if rotation.result is accounts.RefreshResult.reused and rotation.session is not None:
            auth = rotation.session
            await accounts.revoke_sessions(
                session, user_id=auth.user_id, reason="refresh_reuse", only=auth.id
            )
            version = await access.bump_version(session, auth.user_id)
            await audit.record(
                session,
                ctx.as_actor(auth.user_id),
                action="auth.refresh_reused",
                outcome="denied",
                target_type="session",
                target_id=auth.id,
            )
    if rotation.result is accounts.RefreshResult.reused and rotation.session is not None:
        await rt.invalidate(rotation.session.user_id, version)
        raise Unauthorized("this refresh token was already used; the session was signed out for safety")
    if (
        rotation.result is not accounts.RefreshResult.ok
        or rotation.session is None
        or rotation.refresh_token is None
    ):
        raise Unauthorized("the refresh token is not valid; sign in again")
    auth = rotation.session
    access_token, ttl = await rt.keys.issue_access(user_id=auth.user_id, session_id=auth.id)
    return Tokens(
        access_token=access_token, expires_in=ttl, refresh_token=rotation.refresh_token, session_id=auth.id
    )


async def revoke(
    rt: AccessRuntime,
    ctx: audit.AuditContext,
    principal: Principal,
    *,
    reason: str,
    only: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> int:
    async with rt.db.session() as session:
        revoked = await accounts.revoke_sessions(
            session, user_id=principal.user_id, reason=reason, only=only, keep=keep
        )
        version = await access.bump_version(session, principal.user_id)
        if revoked:
            await audit.record(
                session,
                ctx.as_actor(principal.user_id),
                action=f"auth.{reason}",
                target_type="user",
                target_id=principal.user_id,
                after={"sessions": [str(s) for s in revoked]},
            )
    await rt.invalidate(principal.user_id, version)
    return len(revoked)


async def change_password(
    rt: AccessRuntime, ctx: audit.AuditContext, principal: Principal, *, current: str, new: str
) -> None:
    """New password; every other session is signed out."""
    user = await twofactor.load_user(rt, principal.user_id)
    await limiter.ensure_unlocked(rt.redis, LOGIN_LOCK, str(user.id))
    if not passwords.verify(user.password_hash, current):
        await limiter.record_failure(rt.redis, LOGIN_LOCK, str(user.id))
        await audit.record_now(
            rt.db,
            ctx.as_actor(user.id),
            action="account.password_changed",
            outcome="failed",
            target_type="user",
            target_id=user.id,
        )
        raise Unauthorized("the current password is incorrect")
    passwords.check_policy(new, identifiers=(user.email, user.phone))
    new_hash = passwords.hash_password(new)
    async with rt.db.session() as session:
        db_user = await session.get(User, user.id)
        assert db_user is not None
        db_user.password_hash = new_hash
        db_user.password_changed_at = utcnow()
        await accounts.revoke_sessions(
            session, user_id=user.id, reason="password_changed", keep=principal.session_id
        )
        version = await access.bump_version(session, user.id)
        await audit.record(
            session,
            ctx.as_actor(user.id),
            action="account.password_changed",
            target_type="user",
            target_id=user.id,
        )
    await rt.invalidate(user.id, version)


async def request_reset(rt: AccessRuntime, ctx: audit.AuditContext, *, identifier: str) -> None:
    """Queue a reset code for the account, if one exists; the answer and its cost are the same
    either way (the lookup and delivery happen in a worker, `accounts.resets.deliver`)."""
    try:
        kind, value = identifiers.classify(identifier)
    except ValueError:
        return
    await limiter.hit(rt.redis, RESET_IP, ctx.ip or "-")
    await limiter.hit(rt.redis, RESET_ACCOUNT, value)
    async with rt.db.session() as session:
        resets.request(session, ctx, kind=kind, value=value)


async def reset_password(
    rt: AccessRuntime, ctx: audit.AuditContext, *, token: str, new_password: str
) -> None:
    await limiter.hit(rt.redis, RESET_IP, ctx.ip or "-")
    async with rt.db.session() as session:
        user_id = await accounts.consume_reset_token(session, token=token)
        if user_id is None:
            raise Unauthorized("the reset code is not valid or has expired")
        user = await session.get(User, user_id)
        assert user is not None
        passwords.check_policy(new_password, identifiers=(user.email, user.phone))
        user.password_hash = passwords.hash_password(new_password)
        user.password_changed_at = utcnow()
        await accounts.revoke_sessions(session, user_id=user_id, reason="password_reset")
        version = await access.bump_version(session, user_id)
        await audit.record(
            session,
            ctx.as_actor(user_id),
            action="account.password_reset",
            target_type="user",
            target_id=user_id,
        )
    await rt.invalidate(user_id, version)
    identifier = user.email or user.phone or ""
    await limiter.record_success(rt.redis, LOGIN_LOCK, identifier, ctx.ip or "-")
    await limiter.record_success(rt.redis, LOGIN_IDENTIFIER_LOCK, identifier)
    await limiter.record_success(rt.redis, LOGIN_LOCK, account_subject(user_id), ctx.ip or "-")
    await limiter.record_success(rt.redis, LOGIN_IDENTIFIER_LOCK, account_subject(user_id))
