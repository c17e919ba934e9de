"""Sign-up with proof: an email or phone becomes a sign-in identifier only once a code sent to it
comes back.

Called by `accounts.flows.register` (`request`, on the request path of `POST /v1/auth/register`),
the workers' event consumer for `TOPIC` (`deliver`), and the accounts router (`confirm`, for
`POST /v1/auth/register/verify`).

A review found that sign-up took any unused address at once, so anyone could squat somebody's
email and its owner could then never register with it. Now sign-up stores a `Signup`, not an
account: nothing is taken, and a second sign-up with the same address (its real owner) is as
welcome as the first. The request path does the same work for every well-formed sign-up, new
address or taken (the abuse limits, the password hash, one row and one outbox event), so its
answer (the sign-up's secret token, random either way) and its timing tell nothing; the worker
then sends each address a six-digit code, or, when a verified account holds the address
already, tells that account's owner instead.

A code confirms only together with the token of the sign-up it was sent for: a squatter's
sign-up also sends a code to the victim, and the victim must not create an account with the
squatter's password by typing it. The first code to come back creates the account with that
identifier (the other identifier's code, if any, adds it later) and drops every other sign-up's
claim on the address. Codes are stored hashed and live `CODE_TTL`; a sign-up is dropped after
`MAX_FAILURES` wrong codes, so its code cannot be guessed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.access import service as access
from kirana.api.access.runtime import AccessRuntime
from kirana.api.accounts import service as accounts
from kirana.api.accounts import tokens
from kirana.api.accounts.models import Signup, User
from kirana.api.audit import service as audit
from kirana.api.db.base import utcnow
from kirana.api.db.engine import Database
from kirana.api.errors import Conflict, InvalidInput, RateLimited
from kirana.api.notify.providers import Notifier
from kirana.api.outbox import service as outbox
from kirana.api.ratelimit import limiter

log = logging.getLogger(__name__)

TOPIC = "account.signup_requested"
CODE_TTL = timedelta(minutes=30)
MAX_FAILURES = 5
# Sign-ups naming one address from one client address: a stranger sending five cannot make its
# owner's own sign-up a 429 (that would be the squatting this module exists to stop).
SIGNUP_ADDRESS = limiter.Limit("signup-address", 5, 3600)
# Codes sent to one address, whoever asks: what a sign-up flood can make the shop send (SMS costs
# money), past which further sign-ups naming it are stored but get no code for the hour.
SIGNUP_CODES = limiter.Limit("signup-codes", 10, 3600)
SIGNUP_VERIFY_IP = limiter.Limit("signup-verify-ip", 30, 3600)  # codes tried from one address
TAKEN = "that email address or number cannot be used"
BAD_CODE = "the code is not valid, or the sign-up has expired; sign up again for a new code"
KINDS = ("email", "phone")


def _hash(signup_id: uuid.UUID, kind: str, code: str) -> bytes:
    return hashlib.sha256(f"signup\n{signup_id}\n{kind}\n{code}".encode()).digest()


async def request(
    rt: AccessRuntime,
    ctx: audit.AuditContext,
    *,
    email: str | None,
    phone: str | None,
    password_hash: str,
    name: str,
) -> str:
    """Store the sign-up and queue its codes; identical for new and taken addresses. Returns
    the sign-up's secret token (`confirm` needs it with the code)."""
    for value in (email, phone):
        if value:
            await limiter.hit(rt.redis, SIGNUP_ADDRESS, value, ctx.ip or "-")
    now = utcnow()
    token, token_hash = tokens.new_opaque_token()
    async with rt.db.session() as session:
        signup = Signup(
            token_hash=token_hash,
            email=email,
            phone=phone,
            password_hash=password_hash,
            name=name,
            created_at=now,
            expires_at=now + CODE_TTL,
        )
        session.add(signup)
        await session.flush()
        outbox.emit(
            session,
            topic=TOPIC,
            key=str(signup.id),
            payload={"signup_id": str(signup.id), "ip": ctx.ip, "request_id": ctx.request_id},
        )
    return token


async def deliver(
    db: Database, notifier: Notifier, *, payload: dict[str, Any], redis: Redis | None = None
) -> int:
    """Send each address of the sign-up its code (or, if an account holds it, tell that
    account's owner); returns the codes sent. With `redis`, at most `SIGNUP_CODES` an hour go
    to one address, and past that the sign-up waits, codeless, for a later one. Runs in a worker."""
    signup_id = uuid.UUID(str(payload["signup_id"]))
    codes: dict[str, tuple[str, str]] = {}  # kind -> (address, code)
    notices: list[str] = []
    async with db.session() as session:
        signup = await session.get(Signup, signup_id, with_for_update=True)
        if signup is None or signup.expires_at <= utcnow():
            return 0
        for kind in KINDS:
            value = getattr(signup, kind)
            if not value:
                continue
            if await accounts.find_user(session, kind=kind, value=value) is not None:
                setattr(signup, kind, None)  # taken by a verified account: its owner is told
                if kind == "email":
                    notices.append(value)
                continue
            code = f"{secrets.randbelow(10**6):06d}"
            setattr(signup, f"{kind}_code_hash", _hash(signup.id, kind, code))
            codes[kind] = (value, code)
        if signup.email is None and signup.phone is None:
            await session.delete(signup)
        minutes = int(CODE_TTL.total_seconds() // 60)
    for kind, (value, code) in list(codes.items()):
        if redis is not None:
            try:
                await limiter.hit(redis, SIGNUP_CODES, kind, value)
            except RateLimited:
                log.warning("sign-up code budget of an address spent; no code sent", extra={"kind": kind})
                del codes[kind]
                continue
        text = f"Your Kirana sign-up code: {code} (valid {minutes} minutes). Ignore this if it was not you."
        if kind == "email":
            await notifier.email.send(to=value, subject="Confirm your Kirana sign-up", text=text)
        else:
            await notifier.sms.send(to=value, text=text)
    for value in notices:
        await notifier.email.send(
            to=value,
            subject="Someone tried to sign up with your address",
            text="Somebody tried to create a Kirana account with this address, which already has one. "
            "If it was you, sign in or reset your password.",
        )
    return len(codes)


async def confirm(rt: AccessRuntime, ctx: audit.AuditContext, *, token: str, code: str) -> User:
    """The account that this code of this sign-up makes (or completes); InvalidInput (422) for
    a wrong or expired code or an unknown sign-up, Conflict (409) when a verified account took
    the address since."""
    await limiter.hit(rt.redis, SIGNUP_VERIFY_IP, ctx.ip or "-")
    user: User | None = None
    try:
        async with rt.db.session() as session:
            signup = await session.scalar(
                select(Signup)
                .where(Signup.token_hash == tokens.digest(token), Signup.expires_at > utcnow())
                .with_for_update()
            )
            kind = _kind_of(signup, code) if signup is not None else None
            if signup is not None and kind is None:  # counted, in this transaction
                signup.failures += 1
                if signup.failures >= MAX_FAILURES:
                    await session.delete(signup)
            elif signup is not None and kind is not None:
                value = getattr(signup, kind)
                user = await _take(session, ctx, signup, kind=kind, value=value)
                # Every other sign-up's claim on the address is dropped: it is taken now.
                column = Signup.email if kind == "email" else Signup.phone
                await session.execute(
                    update(Signup)
                    .where(column == value, Signup.id != user.id)
                    .values({kind: None, f"{kind}_code_hash": None})
                    .execution_options(synchronize_session=False)
                )
                await session.execute(
                    delete(Signup)
                    .where(Signup.email.is_(None), Signup.phone.is_(None))
                    .execution_options(synchronize_session=False)
                )
    except IntegrityError as exc:  # another account took it between our check and commit
        if getattr(exc.orig, "sqlstate", None) == "23505":
            raise Conflict(TAKEN) from None
        raise
    if user is None:
        raise InvalidInput(BAD_CODE)
    await rt.invalidate(user.id)
    return user


def _kind_of(signup: Signup, code: str) -> str | None:
    """Which of the sign-up's codes this is (email or phone), if either."""
    for kind in KINDS:
        stored: bytes | None = getattr(signup, f"{kind}_code_hash")
        if stored is not None and hmac.compare_digest(stored, _hash(signup.id, kind, code)):
            return kind
    return None


async def _take(
    session: AsyncSession, ctx: audit.AuditContext, signup: Signup, *, kind: str, value: str
) -> User:
    """Give the address to the sign-up's account, creating the account on its first code."""
    user: User | None = await session.get(User, signup.id)
    created = user is None
    if user is None:
        user = User(
            id=signup.id,
            password_hash=signup.password_hash,
            name=signup.name,
            password_changed_at=utcnow(),
        )
    setattr(user, kind, value)
    if await accounts.find_conflict(session, user=user):
        raise Conflict(TAKEN)
    session.add(user)
    await session.flush()
    if created:
        await access.assign_default_role(session, user_id=user.id)
    else:
        await access.bump_version(session, user.id)
    await audit.record(
        session,
        ctx.as_actor(user.id),
        action="account.registered" if created else "account.contact_verified",
        target_type="user",
        target_id=user.id,
        after={"verified": kind},
    )
    setattr(signup, kind, None)
    setattr(signup, f"{kind}_code_hash", None)
    if signup.email is None and signup.phone is None:
        await session.delete(signup)
    await session.flush()  # before the bulk statements that read the table after it
    return user


async def prune(db: Database, *, now: datetime | None = None) -> int:
    """Delete expired sign-ups (their codes can no longer be confirmed); returns how many."""
    async with db.session() as session:
        result = await session.execute(
            delete(Signup).where(Signup.expires_at <= (now or datetime.now(UTC))).returning(Signup.id)
        )
        return len(result.scalars().all())
