"""One per API process: the live sockets, their subscriptions, and the Redis feed behind them.

The hub follows two Redis pub/sub channels on one connection: the real-time fan-out
(`broker.FANOUT`) and the access invalidations (`access.cache.CHANNEL`), so a signed-out
session's sockets close within a second on every replica. Each socket has a bounded queue and
one writer task that handles its items in order (subscriptions, messages, replies): ordering,
duplicate drops and gap filling from the history all happen there, per channel. A socket whose
queue overflows (a slow consumer) is closed rather than allowed to grow memory. While the
process drains, new sockets are refused and open ones are asked to reconnect elsewhere (1012),
spread over the drain period so the other replicas are not hit by all of them at once.
Created by the app's lifespan (`app.state.realtime`); the router hands it each socket.
Channels whose permission needs the database (`delivery:<order id>`) are checked by the
authorizer the app registered for their kind (`authorizers`), so this module imports no domain.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from starlette.websockets import WebSocket

from kirana.api.access.cache import ALL
from kirana.api.access.cache import CHANNEL as ACCESS_CHANNEL
from kirana.api.access.principal import Principal
from kirana.api.access.runtime import AccessRuntime, principal_from
from kirana.api.errors import Unauthorized
from kirana.api.realtime import broker, channels, metrics

log = logging.getLogger(__name__)

POLICY = 1008  # bad credentials, forbidden origin, revoked session
TRY_AGAIN = 1013  # slow consumer, too many sockets
RESTART = 1012  # draining: reconnect to another replica

# (principal, channel) -> None when allowed, else the reason; registered per channel kind.
Authorizer = Callable[[Principal, str], Awaitable[str | None]]


@dataclass
class Sub:
    epoch: str
    last: int


@dataclass(eq=False)
class Connection:
    ws: WebSocket
    principal: Principal
    queue: asyncio.Queue[tuple[Any, ...]]
    subs: dict[str, Sub] = field(default_factory=dict)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int = 1000
    close_reason: str = ""

    def offer(self, item: tuple[Any, ...]) -> None:
        if self.closed.is_set():
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            metrics.SLOW.inc()
            self.kick(TRY_AGAIN, "slow consumer: messages are not being read")

    def kick(self, code: int, reason: str) -> None:
        if not self.closed.is_set():
            self.close_code, self.close_reason = code, reason
            self.closed.set()


async def principal_for_session(
    access: AccessRuntime, user_id: uuid.UUID, session_id: uuid.UUID
) -> Principal:
    """The principal of a live session (a ticket names one), or Unauthorized."""
    snap = await access.cache.get(user_id)
    if snap is not None and session_id not in snap.sessions:
        snap = await access.cache.get(user_id, refresh=True)
    if snap is None or session_id not in snap.sessions:
        raise Unauthorized("this session has been signed out")
    return principal_from(snap, session_id)


class Hub:
    def __init__(
        self,
        redis: Redis,
        access: AccessRuntime,
        *,
        limits: broker.Limits,
        queue_size: int,
        max_per_user: int,
        authorizers: Mapping[str, Authorizer] | None = None,
    ) -> None:
        self.redis = redis
        self.access = access
        self.limits = limits
        self.queue_size = queue_size
        self.max_per_user = max_per_user
        self.authorizers = dict(authorizers or {})
        self.by_channel: dict[str, set[Connection]] = defaultdict(set)
        self.by_user: dict[uuid.UUID, set[Connection]] = defaultdict(set)
        self.draining = False
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rechecks: set[asyncio.Task[None]] = set()  # kept so they are neither lost nor left

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, *, wait_s: float = 2.0) -> None:
        self._task = asyncio.create_task(self._listen(), name="realtime-feed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.subscribed.wait(), wait_s)

    async def stop(self) -> None:
        for conn in list(self.connections()):
            conn.kick(RESTART, "server shutting down")
        for task in (*self._rechecks, *([self._task] if self._task is not None else [])):
            task.cancel()
        for task in (*self._rechecks, *([self._task] if self._task is not None else [])):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def connections(self) -> set[Connection]:
        return {c for conns in self.by_user.values() for c in conns}

    async def drain(self, seconds: float) -> None:
        """Refuse new sockets; close open ones with 1012, spread over `seconds`."""
        self.draining = True
        conns = list(self.connections())
        if not conns:
            return
        step = max(seconds * 0.8, 0.0) / len(conns)
        for conn in conns:
            conn.kick(RESTART, "server restarting: reconnect and resume")
            if step:
                await asyncio.sleep(step)

    # -- sockets ---------------------------------------------------------------------------
    def register(self, ws: WebSocket, principal: Principal) -> Connection | None:
        mine = self.by_user[principal.user_id]
        if len(mine) >= self.max_per_user:
            return None
        conn = Connection(ws=ws, principal=principal, queue=asyncio.Queue(self.queue_size))
        mine.add(conn)
        metrics.SOCKETS.inc()
        return conn

    def unregister(self, conn: Connection) -> None:
        for channel in conn.subs:
            self._drop(channel, conn)
        conn.subs.clear()
        mine = self.by_user.get(conn.principal.user_id)
        if mine is not None and conn in mine:
            mine.discard(conn)
            metrics.SOCKETS.dec()
            if not mine:
                del self.by_user[conn.principal.user_id]

    def _drop(self, channel: str, conn: Connection) -> None:
        members = self.by_channel.get(channel)
        if members is not None:
            members.discard(conn)
            if not members:
                del self.by_channel[channel]

    async def authorize(self, principal: Principal, channel: str) -> str | None:
        """None when `principal` may follow `channel`, else the reason (for the error frame)."""
        refusal = channels.may_subscribe(principal, channel)
        if refusal != channels.LOOKUP:
            return refusal
        check = self.authorizers.get(channels.kind(channel))
        if check is None:
            return "unknown channel"
        try:
            return await check(principal, channel)
        except Exception:
            log.exception("channel authorizer failed", extra={"channel": channel})
            return "could not check this channel now; try again"

    # -- the writer's items ----------------------------------------------------------------
    async def handle(self, conn: Connection, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "msg":
            await self._message(conn, item[1], item[2], item[3], item[4])
        elif kind == "subscribe":
            await self._subscribe(conn, item[1], item[2], item[3])
        elif kind == "revoke":  # the server ends a channel no longer permitted (once)
            if conn.subs.pop(item[1], None) is not None:
                self._drop(item[1], conn)
                await self._send(conn, {"type": "unsubscribed", "channel": item[1]})
        elif kind == "unsubscribe":
            if conn.subs.pop(item[1], None) is not None:
                self._drop(item[1], conn)
            await self._send(conn, {"type": "unsubscribed", "channel": item[1]})
        elif kind == "reply":
            await self._send(conn, item[1])

    async def _send(self, conn: Connection, frame: dict[str, Any] | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame, separators=(",", ":"))
        await conn.ws.send_text(text)
        metrics.SENT.inc()

    async def _subscribe(self, conn: Connection, channel: str, epoch: str | None, since: int | None) -> None:
        refusal = await self.authorize(conn.principal, channel)
        if refusal is not None:
            await self._send(
                conn, {"type": "error", "code": "forbidden", "channel": channel, "detail": refusal}
            )
            return
        self.by_channel[channel].add(conn)  # live messages queue up from here on
        try:
            snap = await broker.snapshot(self.redis, channel, self.limits)
        except BaseException:
            if channel not in conn.subs:  # not subscribed: unregister would not find it here
                self._drop(channel, conn)
            raise
        conn.subs[channel] = Sub(epoch=snap.epoch, last=snap.seq)
        if epoch is None or since is None:
            await self._send(conn, _subscribed(channel, snap, recovered=False))
            return
        missed = broker.missed(snap, epoch=epoch, since=since)
        if missed is None:
            metrics.RESYNCS.inc()
            await self._send(conn, _resync(channel, snap))
            return
        await self._send(conn, _subscribed(channel, snap, recovered=True))
        for text in missed:
            await self._send(conn, text)

    async def _message(self, conn: Connection, channel: str, seq: int, epoch: str, text: str) -> None:
        sub = conn.subs.get(channel)
        if sub is None or (epoch == sub.epoch and seq <= sub.last):
            return  # not (or no longer) subscribed, or already sent
        if epoch == sub.epoch and seq == sub.last + 1:
            sub.last = seq
            await self._send(conn, text)
            return
        # A gap (a fan-out message lost on the way) or a new epoch: fill from the history.
        snap = await broker.snapshot(self.redis, channel, self.limits)
        missed = broker.missed(snap, epoch=sub.epoch, since=sub.last)
        sub.epoch, sub.last = snap.epoch, snap.seq
        if missed is None:
            metrics.RESYNCS.inc()
            await self._send(conn, _resync(channel, snap))
            return
        metrics.RECOVERED.inc(len(missed))
        for m in missed:
            await self._send(conn, m)

    # -- the Redis feed ----------------------------------------------------------------------
    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(broker.FANOUT, ACCESS_CHANNEL)
                self.subscribed.set()
                self._recheck_all()  # messages may have been lost while we were away
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    name = msg["channel"].decode()
                    if name == broker.FANOUT:
                        self._fan_out(msg["data"])
                    else:
                        self._invalidated(msg["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("real-time feed interrupted; resubscribing", extra={"error": repr(exc)})
                await asyncio.sleep(0.5)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _fan_out(self, data: bytes) -> None:
        text = data.decode()
        head = json.loads(text)
        members = self.by_channel.get(head["channel"])
        if not members:
            return
        item = ("msg", head["channel"], int(head["seq"]), head["epoch"], text)
        for conn in list(members):
            conn.offer(item)
        if head.get("type") in channels.RECHECK_AFTER and channels.kind(head["channel"]) in self.authorizers:
            self._spawn(self._recheck_channel(head["channel"]))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="realtime-recheck")
        self._rechecks.add(task)
        task.add_done_callback(self._rechecks.discard)

    async def _recheck_channel(self, channel: str) -> None:
        """Who may follow the channel changed (a delivery went to another agent): end it for
        the sockets no longer allowed, after the message that said so."""
        for conn in list(self.by_channel.get(channel, ())):
            if channel in conn.subs and await self.authorize(conn.principal, channel) is not None:
                conn.offer(("revoke", channel))

    def _recheck_all(self) -> None:
        """After a (re)subscription, let every socket compare its channels with the history."""
        for channel, members in self.by_channel.items():
            for conn in list(members):
                sub = conn.subs.get(channel)
                if sub is not None:
                    conn.offer(("msg", channel, sub.last + 2, sub.epoch, ""))

    def _invalidated(self, text: str) -> None:
        if text == ALL:
            users = list(self.by_user)
        else:
            try:
                users = [uuid.UUID(text.partition(":")[0])]
            except ValueError:
                return
        for user in users:
            if user in self.by_user:
                self._spawn(self._reauthorize(user))

    async def _reauthorize(self, user_id: uuid.UUID) -> None:
        """Close the sockets of sessions that ended; drop channels no longer permitted."""
        try:
            snap = await self.access.cache.get(user_id, refresh=True)
        except Exception:
            log.exception("could not recheck a socket's session")
            return
        for conn in list(self.by_user.get(user_id, ())):
            sid = conn.principal.session_id
            if snap is None or sid is None or sid not in snap.sessions:
                metrics.REVOKED.inc()
                conn.kick(POLICY, "session signed out")
                continue
            conn.principal = principal_from(snap, sid)
            for channel in list(conn.subs):
                if await self.authorize(conn.principal, channel) is not None:
                    conn.offer(("revoke", channel))


def _subscribed(channel: str, snap: broker.Snapshot, *, recovered: bool) -> dict[str, Any]:
    return {
        "type": "subscribed",
        "channel": channel,
        "epoch": snap.epoch,
        "seq": snap.seq,
        "recovered": recovered,
    }


def _resync(channel: str, snap: broker.Snapshot) -> dict[str, Any]:
    return {"type": "resync", "channel": channel, "epoch": snap.epoch, "seq": snap.seq}
