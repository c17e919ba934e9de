"""Two real API processes on one PostgreSQL and one Redis, WebSocket clients, and event
publishing through the real outbox and relay, for the real-time tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from websockets.asyncio.client import ClientConnection, connect

from kirana.api.access.models import UserRole, UserScope
from kirana.api.accounts import passwords
from kirana.api.accounts.models import User
from kirana.api.db.base import utcnow
from kirana.api.db.engine import Database
from kirana.api.db.urls import sync_url
from kirana.api.outbox import service as outbox
from kirana.api.realtime.broker import Limits
from kirana.workers import relay

PASSWORD = "correct-horse-battery"
APP = "kirana.api.asgi:factory"


def env(database_url: str, redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "KIRANA_DATABASE_URL": database_url,
        "KIRANA_REDIS_URL": redis_url,
        "KIRANA_DATA_DIR": str(tmp_path),
        "KIRANA_ENVIRONMENT": "test",
        "KIRANA_LOG_LEVEL": "WARNING",
        "KIRANA_DRAIN_SECONDS": "0",
        "KIRANA_WS_ALLOWED_ORIGINS": '["https://shop.example"]',
        **extra,
    }


@dataclass
class Account:
    user_id: uuid.UUID
    email: str
    token: str = ""

    @property
    def channel(self) -> str:
        return f"user:{self.user_id}:orders"


def make_accounts(
    database_url: str, base: str, count: int, *, role: str = "customer", scopes: Iterable[str] = ()
) -> list[Account]:
    """Accounts inserted with SQL, then signed in through the real login route."""
    engine = create_engine(sync_url(database_url))
    accounts = []
    password_hash = passwords.hash_password(PASSWORD)
    with Session(engine) as session, session.begin():
        for _ in range(count):
            email = f"rt-{uuid.uuid4().hex[:12]}@example.com"
            user = User(email=email, password_hash=password_hash, name="Rt", password_changed_at=utcnow())
            session.add(user)
            session.flush()
            session.add(UserRole(user_id=user.id, role=role, granted_at=utcnow()))
            for scope in scopes:
                session.add(UserScope(user_id=user.id, scope=scope))
            accounts.append(Account(user_id=user.id, email=email))
    engine.dispose()
    with httpx.Client(base_url=base, timeout=30) as client:
        for acc in accounts:
            r = client.post(login_path(client), json={"identifier": acc.email, "password": PASSWORD})
            r.raise_for_status()
            acc.token = str(r.json()["access_token"])
    return accounts


def login_path(client: httpx.Client) -> str:  # noqa: ARG001 (callers pass the client they sign in with)
    return "/v1/auth/login"


async def ticket(base: str, token: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        r = await client.post("/v1/ws/ticket", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201, r.text
        return str(r.json()["ticket"])


def ws_url(base: str, ticket: str | None = None) -> str:
    url = base.replace("http://", "ws://") + "/v1/ws"
    return url + (f"?ticket={ticket}" if ticket else "")


async def open_socket(base: str, token: str, **kwargs: Any) -> ClientConnection:
    return await connect(ws_url(base, await ticket(base, token)), open_timeout=30, **kwargs)


async def frame(ws: ClientConnection, timeout: float = 20) -> dict[str, Any]:
    data: Any = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return dict(data)


async def subscribe(
    ws: ClientConnection, channel: str, since: tuple[str, int] | None = None
) -> dict[str, Any]:
    msg: dict[str, Any] = {"op": "subscribe", "channel": channel}
    if since is not None:
        msg["since"] = {"epoch": since[0], "seq": since[1]}
    await ws.send(json.dumps(msg))
    return await frame(ws)


async def emit(
    database_url: str, user_id: uuid.UUID, count: int, *, store: str = "blr-1", start: int = 0, pad: int = 0
) -> None:
    """`count` committed order events for `user_id`, as the orders service writes them."""
    db = Database(database_url)
    try:
        async with db.session() as s:
            for i in range(start, start + count):
                payload = {"order_id": str(uuid.uuid4()), "user_id": str(user_id), "store_code": store}
                payload |= {"from": "pending", "to": "paid", "n": i, "pad": "x" * pad}
                outbox.emit(s, topic="order.status_changed", key=payload["order_id"], payload=payload)
    finally:
        await db.dispose()


async def relay_all(database_url: str, redis_url: str, history: Limits | None = None) -> int:
    db = Database(database_url)
    redis = Redis.from_url(redis_url)
    total = 0
    try:
        while sent := await relay.relay_once(db, redis, history=history):
            total += sent
    finally:
        await redis.aclose()
        await db.dispose()
    return total


@dataclass
class Follower:
    """A client that follows one channel, reconnecting (with `since`) whenever it is closed."""

    bases: list[str]
    token: str
    channel: str
    seqs: list[int] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    epoch: str = ""
    reconnects: int = 0
    close_codes: list[int] = field(default_factory=list)

    async def run(self, stop: asyncio.Event, turn: int = 0) -> None:
        while not stop.is_set():
            base = self.bases[(turn + self.reconnects) % len(self.bases)]
            try:
                ws = await open_socket(base, self.token)
            except (OSError, httpx.HTTPError, AssertionError, TimeoutError, Exception):
                self.reconnects += 1
                await asyncio.sleep(0.2)
                continue
            try:
                since = (self.epoch, self.seqs[-1] if self.seqs else 0) if self.epoch else None
                first = await subscribe(ws, self.channel, since)
                assert first["type"] == "subscribed", first
                self.epoch = first["epoch"]
                while True:
                    msg = json.loads(await ws.recv())
                    if msg.get("channel") == self.channel and "seq" in msg and msg["type"] != "subscribed":
                        self.seqs.append(msg["seq"])
                        self.numbers.append(msg["data"]["n"])
            except Exception:
                if ws.close_code is not None:
                    self.close_codes.append(ws.close_code)
                self.reconnects += 1
            finally:
                await ws.close()
