"""The per-process security runtime: signing keys, the permission cache and its Redis listener.

Created by the app's lifespan (`start`), stored as `app.state.access`, and used by
`access.deps.get_principal` to turn a bearer token into a `Principal` on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta

from redis.asyncio import Redis

from kirana.api.access import service as access
from kirana.api.access.cache import PermissionCache, Snapshot, publish
from kirana.api.access.principal import Principal
from kirana.api.accounts.crypto import SecretBox
from kirana.api.accounts.tokens import KeyRing
from kirana.api.db.engine import Database
from kirana.api.errors import Unauthorized
from kirana.api.notify import providers
from kirana.api.settings import Settings

log = logging.getLogger(__name__)
_BEARER = {"WWW-Authenticate": "Bearer"}


class AccessRuntime:
    def __init__(self, settings: Settings, db: Database, redis: Redis) -> None:
        self.settings = settings
        self.db = db
        self.redis = redis
        self.box = SecretBox.from_settings(settings)
        self.keys = KeyRing(
            db,
            self.box,
            rotation=timedelta(seconds=settings.signing_key_rotation_s),
            token_ttl=timedelta(seconds=settings.access_token_ttl_s),
        )
        self.cache = PermissionCache(self._load)
        self.notifier = providers.build(settings)
        self._listener: asyncio.Task[None] | None = None

    async def start(self, *, wait_subscribed_s: float = 1.0) -> None:
        if not self.settings.is_development and self.settings.sms.provider == "console":
            log.error("KIRANA_SMS_PROVIDER=console: SMS codes are only logged, never delivered")
        await self.keys.load()
        self._listener = asyncio.create_task(self.cache.listen(self.redis), name="access-invalidations")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.cache.subscribed.wait(), wait_subscribed_s)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.notifier.aclose()

    async def _load(self, user_id: uuid.UUID) -> Snapshot | None:
        async with self.db.session() as session:
            return await access.load_snapshot(
                session,
                user_id=user_id,
                ttl_s=self.settings.permission_cache_ttl_s,
                recent_revoked_s=self.settings.access_token_ttl_s + 60,
            )

    async def invalidate(self, user_id: uuid.UUID | None, version: int | None = None) -> None:
        """Drop the user's snapshot here at once and, through Redis, in every other process."""
        if user_id is None:
            self.cache.clear()
        else:
            self.cache.invalidate(user_id, version)
        await publish(self.redis, user_id, version)

    async def authenticate_header(self, header: str) -> Principal:
        """The caller named by an `Authorization` header value; 401 unless it is a valid bearer
        token of a live session."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("use an `Authorization: Bearer <access token>` header", headers=_BEARER)
        return await self.authenticate(token.strip())

    async def authenticate(self, token: str) -> Principal:
        claims = await self.keys.verify_access(token)
        snap = await self.cache.get(claims.user_id)
        if snap is not None and claims.session_id not in snap.sessions:
            if claims.session_id in snap.revoked_sessions:
                raise Unauthorized("this session has been signed out", headers=_BEARER)
            snap = await self.cache.get(claims.user_id, refresh=True)  # a session newer than the snapshot
        if snap is None:
            raise Unauthorized("this account is not active", headers=_BEARER)
        if claims.session_id not in snap.sessions:
            raise Unauthorized("this session has been signed out", headers=_BEARER)
        return principal_from(snap, claims.session_id)


def principal_from(snap: Snapshot, session_id: uuid.UUID | None) -> Principal:
    return Principal(
        user_id=snap.user_id,
        permissions=snap.permissions,
        denied=snap.denied,
        roles=snap.roles,
        scopes=snap.scopes,
        session_id=session_id,
        two_factor_at=snap.sessions.get(session_id) if session_id else None,
        extra={
            "two_factor_enabled": "yes" if snap.two_factor_enabled else "no",
            "needs_two_factor": "yes" if snap.needs_two_factor else "no",
        },
    )
