"""Access tokens (JWT, EdDSA) signed by a rotating key set, and opaque refresh/reset tokens.

`KeyRing` is created once per process (the app's lifespan) and loads the keys from the
`signing_keys` table. The newest key signs; a new one is created (under an advisory lock, so
one replica does it) when the active one reaches the end of its signing period; retired keys
still verify until every token they signed has expired. A token carrying an unknown `kid`
makes the ring reload (at most every few seconds), so replicas pick up new keys by themselves.

PyJWT signs and verifies: it is small, typed, widely deployed, and EdDSA via `cryptography` is
all we need (no JWE), with `kid` lookup through `get_unverified_header`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy import select, text

from kirana.api.accounts.crypto import SecretBox
from kirana.api.accounts.models import SigningKey
from kirana.api.db.base import utcnow
from kirana.api.db.engine import Database
from kirana.api.errors import Unauthorized

ISSUER = "kirana"
AUDIENCE = "kirana-api"
ALGORITHM = "EdDSA"
_ROTATION_LOCK = 0x6B69_7261_6E61_6B31  # pg advisory lock id for key rotation
_RELOAD_EVERY_S = 5.0


@dataclass(frozen=True)
class Key:
    kid: str
    public: Ed25519PublicKey
    private: Ed25519PrivateKey
    sign_until: datetime
    verify_until: datetime


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    issued_at: float
    expires_at: float


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class KeyRing:
    def __init__(self, db: Database, box: SecretBox, *, rotation: timedelta, token_ttl: timedelta) -> None:
        self.db = db
        self.box = box
        self.rotation = rotation
        self.token_ttl = token_ttl
        self._keys: dict[str, Key] = {}
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()
        # Access tokens whose signature and claims were verified: token -> (kid, claims). A
        # client sends the same token for its whole life, and an Ed25519 check costs about
        # 100 us; a hit re-checks the expiry and that the signing key is still trusted.
        # Sessions are not cached here (the permission snapshot checks them on every request).
        self._verified: dict[str, tuple[str, AccessClaims]] = {}
        self.verified_max = 20_000

    async def load(self, *, force_rotate: bool = False) -> None:
        """Read the key set; create a new signing key when none can sign for a while."""
        async with self._lock:
            async with self.db.session() as session:
                now = utcnow()
                # Rotate a little before the active key stops signing, so replicas overlap.
                margin = min(self.rotation / 10, timedelta(hours=1))
                active = await self._active(session, now + margin)
                if active is None or force_rotate:
                    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ROTATION_LOCK})
                    active = None if force_rotate else await self._active(session, now + margin)
                    if active is None:
                        session.add(self._new_key(now))
                        await session.flush()
                rows = (await session.scalars(select(SigningKey).where(SigningKey.verify_until > now))).all()
                self._keys = {row.kid: self._decode(row) for row in rows}
            self._loaded_at = time.monotonic()

    @staticmethod
    async def _active(session: Any, at: datetime) -> SigningKey | None:
        stmt = (
            select(SigningKey)
            .where(SigningKey.sign_until > at)
            .order_by(SigningKey.created_at.desc())
            .limit(1)
        )
        row: SigningKey | None = await session.scalar(stmt)
        return row

    def _new_key(self, now: datetime) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        raw_private = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        raw_public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        sign_until = now + self.rotation
        return SigningKey(
            kid=f"{now:%Y%m%d}-{secrets.token_hex(4)}",
            private_key=self.box.encrypt(raw_private),
            public_key=raw_public,
            created_at=now,
            sign_until=sign_until,
            verify_until=sign_until + self.token_ttl + timedelta(minutes=5),
        )

    def _decode(self, row: SigningKey) -> Key:
        private = Ed25519PrivateKey.from_private_bytes(self.box.decrypt(row.private_key))
        return Key(
            kid=row.kid,
            public=Ed25519PublicKey.from_public_bytes(row.public_key),
            private=private,
            sign_until=row.sign_until,
            verify_until=row.verify_until,
        )

    async def signing_key(self) -> Key:
        now = utcnow()
        candidates = [k for k in self._keys.values() if k.sign_until > now]
        if not candidates:
            await self.load()
            candidates = [k for k in self._keys.values() if k.sign_until > now]
        if not candidates:
            raise RuntimeError("no signing key available")
        return max(candidates, key=lambda k: k.sign_until)

    async def verifying_key(self, kid: str) -> Key | None:
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._loaded_at > _RELOAD_EVERY_S:
            await self.load()
            key = self._keys.get(kid)
        if key is None or key.verify_until <= utcnow():
            return None
        return key

    def jwks(self) -> dict[str, Any]:
        """The public keys (RFC 8037 OKP JWKs) for services that verify our tokens."""
        now = utcnow()
        keys = []
        for k in sorted(self._keys.values(), key=lambda k: k.sign_until, reverse=True):
            if k.verify_until <= now:
                continue
            raw = k.public.public_bytes(Encoding.Raw, PublicFormat.Raw)
            keys.append(
                {"kty": "OKP", "crv": "Ed25519", "alg": ALGORITHM, "use": "sig", "kid": k.kid, "x": _b64(raw)}
            )
        return {"keys": keys}

    async def issue_access(self, *, user_id: uuid.UUID, session_id: uuid.UUID) -> tuple[str, int]:
        key = await self.signing_key()
        now = int(time.time())
        ttl = int(self.token_ttl.total_seconds())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "sid": str(session_id),
            "iat": now,
            "exp": now + ttl,
            "typ": "access",
        }
        token = jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})
        return token, ttl

    async def issue_purpose(self, *, purpose: str, subject: str, ttl_s: int, **extra: str) -> str:
        """A short-lived signed token for one purpose (e.g. the second step of a 2FA login)."""
        key = await self.signing_key()
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": f"kirana-{purpose}", "sub": subject, "iat": now, "exp": now + ttl_s}
        claims.update(extra)
        claims["jti"] = secrets.token_hex(12)
        return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})

    async def _decode_token(self, token: str, audience: str) -> tuple[str, dict[str, Any]]:
        """The verified claims, and the id of the key that signed them."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed token", headers={"WWW-Authenticate": "Bearer"}) from None
        kid = header.get("kid")
        key = await self.verifying_key(kid) if isinstance(kid, str) else None
        if key is None or not isinstance(kid, str):
            raise Unauthorized("token signed by an unknown key", headers={"WWW-Authenticate": "Bearer"})
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized(
                "token expired", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            ) from None
        except jwt.PyJWTError:
            raise Unauthorized(
                "invalid token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            ) from None
        return kid, claims

    async def verify_access(self, token: str) -> AccessClaims:
        known = self._verified.get(token)
        if known is not None:
            kid, claims = known
            if claims.expires_at > time.time() and await self.verifying_key(kid) is not None:
                return claims
            self._verified.pop(token, None)  # another request may have dropped it meanwhile
        kid, decoded = await self._decode_token(token, AUDIENCE)
        try:
            claims = AccessClaims(
                user_id=uuid.UUID(decoded["sub"]),
                session_id=uuid.UUID(decoded["sid"]),
                issued_at=float(decoded["iat"]),
                expires_at=float(decoded["exp"]),
            )
        except (KeyError, ValueError):
            raise Unauthorized("invalid token", headers={"WWW-Authenticate": "Bearer"}) from None
        if len(self._verified) >= self.verified_max:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        self._verified[token] = (kid, claims)
        return claims

    async def verify_purpose(self, token: str, *, purpose: str) -> dict[str, Any]:
        _kid, claims = await self._decode_token(token, f"kirana-{purpose}")
        return claims


def new_opaque_token() -> tuple[str, bytes]:
    """A random bearer secret and the SHA-256 digest stored in its place."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
