"""TOTP, recovery codes and SMS codes. Typed, keyword-only, no HTTP, no commit.

Called by `twofactor.flows` (enrolment, login second step, step-up). TOTP seeds are encrypted
with the `SecretBox`; a time step is accepted once per user (`last_used_step`, advanced with a
conditional UPDATE, so two concurrent requests cannot both spend it). SMS codes live in Redis:
only an HMAC of the code is stored, it expires after 5 minutes, allows 5 attempts, and a new
code replaces the previous one.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass

import pyotp
import segno
from redis.asyncio import Redis
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.accounts.crypto import SecretBox
from kirana.api.db.base import utcnow
from kirana.api.errors import InvalidState, RateLimited
from kirana.api.notify.providers import SmsProvider
from kirana.api.ratelimit import limiter
from kirana.api.twofactor.models import RecoveryCode, TotpCredential

ISSUER = "Kirana"
STEP_S = 30
RECOVERY_CODES = 10
SMS_TTL_S = 300
SMS_MAX_ATTEMPTS = 5
SMS_RESEND_S = 60
SMS_TEXT = "{code} is your Kirana verification code. It is valid for 5 minutes. Do not share it."


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str
    qr_png_data_uri: str
    qr_svg: str


async def begin_totp(
    session: AsyncSession, box: SecretBox, *, user_id: uuid.UUID, account_name: str
) -> Enrolment:
    """A new (unconfirmed) seed; replaces an earlier unconfirmed one, refuses if 2FA is on."""
    existing = await session.get(TotpCredential, user_id)
    if existing is not None and existing.confirmed_at is not None:
        raise InvalidState("an authenticator app is already enrolled; disable it first")
    secret = pyotp.random_base32()
    if existing is None:
        session.add(TotpCredential(user_id=user_id, secret=box.encrypt(secret.encode()), created_at=utcnow()))
    else:
        existing.secret = box.encrypt(secret.encode())
        existing.created_at = utcnow()
        existing.last_used_step = 0
    await session.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=ISSUER)
    qr = segno.make(uri, error="m")
    return Enrolment(
        secret=secret, uri=uri, qr_png_data_uri=qr.png_data_uri(scale=5), qr_svg=qr.svg_inline(scale=5)
    )


def matching_step(secret: str, code: str, *, now: float, window: int = 1) -> int | None:
    """The time step (within +-window) whose code equals `code`, or None. Pure."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now // STEP_S)
    for step in range(current - window, current + window + 1):
        if secrets.compare_digest(totp.at(step * STEP_S), code):
            return step
    return None


async def verify_totp(
    session: AsyncSession, box: SecretBox, *, user_id: uuid.UUID, code: str, confirmed: bool = True
) -> bool:
    """Whether the code matches the user's (confirmed, or with `confirmed` False the pending) authenticator,
    never the same step twice."""
    cred = await session.get(TotpCredential, user_id)
    if cred is None or (cred.confirmed_at is None) == confirmed:
        return False
    step = matching_step(box.decrypt(cred.secret).decode(), code, now=time.time())
    if step is None:
        return False
    # Accept each step once: only a step newer than the last accepted one advances the marker.
    result = await session.execute(
        update(TotpCredential)
        .where(TotpCredential.user_id == user_id, TotpCredential.last_used_step < step)
        .values(last_used_step=step)
        .returning(TotpCredential.user_id)
    )
    return result.first() is not None


async def confirm_totp(
    session: AsyncSession, box: SecretBox, *, user_id: uuid.UUID, code: str
) -> list[str] | None:
    """Turn the pending seed on with its first code; returns fresh recovery codes (or None)."""
    if not await verify_totp(session, box, user_id=user_id, code=code, confirmed=False):
        return None
    await session.execute(
        update(TotpCredential).where(TotpCredential.user_id == user_id).values(confirmed_at=utcnow())
    )
    return await new_recovery_codes(session, box, user_id=user_id)


async def totp_enabled(session: AsyncSession, *, user_id: uuid.UUID) -> bool:
    """Whether the user has a confirmed authenticator app."""
    confirmed = await session.scalar(
        select(TotpCredential.confirmed_at).where(TotpCredential.user_id == user_id)
    )
    return confirmed is not None


async def disable_totp(session: AsyncSession, *, user_id: uuid.UUID) -> None:
    """Remove the user's authenticator and recovery codes."""
    await session.execute(delete(TotpCredential).where(TotpCredential.user_id == user_id))
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


def _format_recovery(raw: str) -> str:
    return f"{raw[:5]}-{raw[5:]}"


def _canonical_recovery(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


async def new_recovery_codes(session: AsyncSession, box: SecretBox, *, user_id: uuid.UUID) -> list[str]:
    """Replace the user's recovery codes with 10 new ones (shown once, stored as HMACs)."""
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = ["".join(secrets.choice(alphabet) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    now = utcnow()
    session.add_all(
        RecoveryCode(user_id=user_id, code_hash=box.mac("recovery", str(user_id), c), created_at=now)
        for c in codes
    )
    await session.flush()
    return [_format_recovery(c) for c in codes]


async def use_recovery_code(session: AsyncSession, box: SecretBox, *, user_id: uuid.UUID, code: str) -> bool:
    """Spend one unused recovery code; whether it was valid."""
    code_hash = box.mac("recovery", str(user_id), _canonical_recovery(code))
    result = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == code_hash,
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .returning(RecoveryCode.id)
    )
    return result.first() is not None


async def recovery_codes_left(session: AsyncSession, *, user_id: uuid.UUID) -> int:
    """How many unused recovery codes the user has."""
    rows = await session.scalars(
        select(RecoveryCode.id).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    return len(rows.all())


# SMS codes ---------------------------------------------------------------------------------

SMS_IP = limiter.Limit("sms-ip", 30, 3600)


def _sms_key(user_id: uuid.UUID, purpose: str) -> str:
    return f"kirana:sms2fa:{user_id}:{purpose}"


async def send_sms_code(
    redis: Redis,
    box: SecretBox,
    sms: SmsProvider,
    *,
    user_id: uuid.UUID,
    phone: str,
    purpose: str,
    daily_cap: int,
    ip: str | None,
) -> None:
    """Send a fresh code (which invalidates the previous one), throttled per number and IP."""
    resend_key = f"kirana:sms2fa:resend:{limiter.subject_key(phone)}"
    if not await redis.set(resend_key, b"1", nx=True, ex=SMS_RESEND_S):
        ttl = max(1, int(await redis.ttl(resend_key)))
        raise RateLimited(
            f"a code was sent recently; request another in {ttl} s", headers={"Retry-After": str(ttl)}
        )
    await limiter.hit(redis, limiter.Limit("sms-day", daily_cap, 86400), phone)
    if ip:
        await limiter.hit(redis, SMS_IP, ip)
    code = f"{secrets.randbelow(1_000_000):06d}"
    key = _sms_key(user_id, purpose)
    nonce = secrets.token_hex(8)
    await redis.hset(
        key,
        mapping={"mac": box.mac("sms", str(user_id), purpose, nonce, code), "nonce": nonce, "attempts": 0},
    )
    await redis.expire(key, SMS_TTL_S)
    await sms.send(to=phone, text=SMS_TEXT.format(code=code))


async def verify_sms_code(
    redis: Redis, box: SecretBox, *, user_id: uuid.UUID, purpose: str, code: str
) -> bool:
    """Whether the code matches the one sent for `purpose`; a code is gone after a match or too many
    attempts."""
    key = _sms_key(user_id, purpose)
    attempts = await redis.hincrby(key, "attempts", 1)
    stored = await redis.hmget(key, ["mac", "nonce"])
    if stored[0] is None or stored[1] is None:
        await redis.delete(key)
        return False
    if attempts > SMS_MAX_ATTEMPTS:
        await redis.delete(key)
        return False
    mac, nonce = (v.decode() if isinstance(v, bytes) else str(v) for v in stored)
    if box.mac_matches(mac, "sms", str(user_id), purpose, nonce, code.strip()):
        await redis.delete(key)  # single use
        return True
    return False
