"""Changing an account's email or phone: the new one must prove it receives messages first.

Called by the accounts router (`PATCH /v1/auth/me`, `POST /v1/auth/me/verify`). A change is
only requested at first: a six-digit code goes to the *new* address (email, or SMS through the
configured provider) and nothing else changes, so an address nobody proved to own never becomes
a sign-in identifier of this account. Confirming the code makes the change, signs the new number
out of SMS two-factor, and tells the *old* address what happened. Codes are stored hashed,
expire after `CODE_TTL`, are sent at most `CONTACT_CODE.max` times an hour per account, and
lock after five wrong tries.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from kirana.api.access import service as access
from kirana.api.access.principal import Principal
from kirana.api.access.runtime import AccessRuntime
from kirana.api.accounts import service as accounts
from kirana.api.accounts.models import ContactChange, User
from kirana.api.audit import service as audit
from kirana.api.db.base import utcnow
from kirana.api.errors import Conflict, InvalidInput
from kirana.api.ratelimit import limiter

CODE_TTL = timedelta(minutes=15)
CONTACT_CODE = limiter.Limit("contact-code", 5, 3600)  # codes sent per account
CONTACT_VERIFY = limiter.Lockout("contact-verify", free=5, base_s=60, cap_s=3600)  # per account
TAKEN = "that email address or number cannot be used"


def _hash(user_id: uuid.UUID, kind: str, code: str) -> bytes:
    return hashlib.sha256(f"{user_id}\n{kind}\n{code}".encode()).digest()


def masked(kind: str, value: str) -> str:
    """An address shown to its previous owner without giving it away whole."""
    if kind == "email":
        name, _, domain = value.partition("@")
        return f"{name[:1]}***@{domain}"
    return f"{value[:3]}*****{value[-2:]}"


async def request_change(
    rt: AccessRuntime, ctx: audit.AuditContext, principal: Principal, *, email: str | None, phone: str | None
) -> list[str]:
    """Send a code to each new address; returns the kinds now waiting for their code."""
    async with rt.db.session() as session:
        user = await session.get(User, principal.user_id)
        assert user is not None
        wanted = {k: v for k, v in (("email", email), ("phone", phone)) if v and v != getattr(user, k)}
        for kind, value in wanted.items():
            probe = User(id=user.id, email=value if kind == "email" else None)
            probe.phone = value if kind == "phone" else None
            if await accounts.find_conflict(session, user=probe):
                raise Conflict(TAKEN)
    codes: dict[str, str] = {}
    for kind in wanted:
        await limiter.hit(rt.redis, CONTACT_CODE, str(principal.user_id))
        codes[kind] = f"{secrets.randbelow(10**6):06d}"
    if not wanted:
        return []
    now = utcnow()
    async with rt.db.session() as session:
        for kind, value in wanted.items():
            row = {
                "user_id": principal.user_id,
                "kind": kind,
                "value": value,
                "code_hash": _hash(principal.user_id, kind, codes[kind]),
                "created_at": now,
                "expires_at": now + CODE_TTL,
            }
            stmt = insert(ContactChange).values(**row)
            await session.execute(
                stmt.on_conflict_do_update(index_elements=["user_id", "kind"], set_=dict(stmt.excluded))
            )
        await audit.record(
            session,
            ctx.as_actor(principal.user_id),
            action="account.contact_change_requested",
            target_type="user",
            target_id=principal.user_id,
            after={"kinds": sorted(wanted)},
        )
    minutes = int(CODE_TTL.total_seconds() // 60)
    for kind, value in wanted.items():
        text = f"Your Kirana code to confirm this {kind}: {codes[kind]} (valid {minutes} minutes)."
        if kind == "email":
            await rt.notifier.email.send(to=value, subject="Confirm your new Kirana email", text=text)
        else:
            await rt.notifier.sms.send(to=value, text=text)
    return sorted(wanted)


async def confirm_change(
    rt: AccessRuntime, ctx: audit.AuditContext, principal: Principal, *, kind: str, code: str
) -> User:
    """Make the change the code was sent for, and tell the old address."""
    subject = str(principal.user_id)
    await limiter.ensure_unlocked(rt.redis, CONTACT_VERIFY, subject)
    try:
        async with rt.db.session() as session:
            change = await session.get(ContactChange, (principal.user_id, kind))
            good = (
                change is not None
                and change.expires_at > utcnow()
                and hmac.compare_digest(change.code_hash, _hash(principal.user_id, kind, code))
            )
            if not good or change is None:
                raise _BadCode
            user = await session.get(User, principal.user_id)
            assert user is not None
            old = getattr(user, kind)
            if kind == "email":
                user.email = change.value
            else:
                user.phone = change.value
                user.sms_2fa_enabled = False  # a new number has to be enrolled again
            if await accounts.find_conflict(session, user=user):
                raise Conflict(TAKEN)
            await session.execute(
                delete(ContactChange).where(ContactChange.user_id == user.id, ContactChange.kind == kind)
            )
            await session.flush()
            await access.bump_version(session, user.id)
            await audit.record(
                session,
                ctx.as_actor(user.id),
                action="account.contact_changed",
                target_type="user",
                target_id=user.id,
                before={kind: old},
                after={kind: change.value},
            )
    except _BadCode:
        await limiter.record_failure(rt.redis, CONTACT_VERIFY, subject)
        raise InvalidInput("the code is not valid or has expired; ask for a new one") from None
    except IntegrityError as exc:  # another account took it between our check and commit
        if getattr(exc.orig, "sqlstate", None) == "23505":
            raise Conflict(TAKEN) from None
        raise
    await limiter.record_success(rt.redis, CONTACT_VERIFY, subject)
    await rt.invalidate(user.id)
    if old:
        text = (
            f"The {kind} of your Kirana account was changed to {masked(kind, change.value)}. "
            "If this was not you, reset your password now and contact support."
        )
        if kind == "email":
            await rt.notifier.email.send(to=old, subject="Your Kirana email was changed", text=text)
        else:
            await rt.notifier.sms.send(to=old, text=text)
    return user


class _BadCode(Exception):
    pass
