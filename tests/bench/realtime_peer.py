"""Centrifugo, the peer of the real-time benchmark (tests/bench/bench_realtime.py), driven by the
same `websockets` clients, socket counts and events as Kirana and the bare broadcast.

The server is built from the Go module proxy at the release testbed/versions.env pins
(`testbed/tools.sh centrifugo`, run here when the binary is not in ~/.cache/kirana/tools yet; no
part of `make tools` or CI). It is set up as Kirana's path is: the Redis engine on the same Redis,
a numbered history per channel (the size and age Kirana keeps, `force_recovery` and
`force_positioning`, as Kirana's hub fills gaps from its history), a JWT per account (HS256,
`sub` = the account's user id) on the connect command, then a subscribe command for the
account's own channel (user-limited, `orders#<user id>`: only that user may subscribe, as only
the owner may follow `user:<id>:orders`), pings every 10 s (Kirana's `ws_ping_interval_s`). An
event is one `/api/broadcast` call to every account's channel (Kirana's: one transaction with a
row per account), so it fans out to every socket; its clock starts at that call.

JSON protocol (v2): one command or reply per line, several lines may share a frame; the server
pings with `{}` and the client answers `{}`; a publication arrives as
`{"push": {"channel": ..., "pub": {"data": ...}}}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.bench.harness import REPO, cached_tool, wait_http

HISTORY_SIZE = 100  # kirana.api.realtime.broker.Limits: history_size, history_ttl_s
HISTORY_TTL_S = 600
PING_INTERVAL_S = 10  # Settings.ws_ping_interval_s
# How it was driven, for the notes of the results.
SETUP = (
    f"Redis engine on the same Redis; history {HISTORY_SIZE} messages / {HISTORY_TTL_S} s per channel "
    "with force_recovery and force_positioning (Kirana numbers and keeps the same); JSON protocol, "
    "a JWT connect then a subscribe to the account's user-limited channel per socket, one "
    f"/api/broadcast call per event to every account's channel; pings every {PING_INTERVAL_S} s "
    "as Kirana's; one process on every core"
)


def version() -> str:
    """The pinned release (testbed/versions.env)."""
    for line in (REPO / "testbed" / "versions.env").read_text().splitlines():
        if line.startswith("CENTRIFUGO_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError("testbed/versions.env pins no CENTRIFUGO_VERSION")


def name() -> str:
    return f"Centrifugo {version()}"


def binary() -> Path:
    """The pinned server, built first if it is not in the cache (minutes: its progress shows)."""
    return cached_tool("centrifugo")


def channel(user_id: object) -> str:
    return f"orders#{user_id}"


def config(port: int, redis_url: str, secret: str, api_key: str) -> dict[str, Any]:
    """The v6 configuration (every key checked by `centrifugo checkconfig`)."""
    return {
        "http_server": {"address": "127.0.0.1", "port": port},
        "log": {"level": "error"},
        "engine": {"type": "redis", "redis": {"address": [redis_url], "prefix": "bench-centrifugo"}},
        "client": {
            "token": {"hmac_secret_key": secret},
            "ping_interval": f"{PING_INTERVAL_S}s",
            "pong_timeout": f"{PING_INTERVAL_S - 2}s",
        },
        "channel": {
            "without_namespace": {
                "allow_user_limited_channels": True,
                "history_size": HISTORY_SIZE,
                "history_ttl": f"{HISTORY_TTL_S}s",
                "force_recovery": True,
                "force_positioning": True,
            }
        },
        "http_api": {"key": api_key},
        "health": {"enabled": True},
        "usage_stats": {"disabled": True},
    }


def token(secret: str, user_id: object) -> str:
    """A connection JWT for `user_id` (HS256 with `client.token.hmac_secret_key`), for a day."""
    return jwt.encode({"sub": str(user_id), "exp": int(time.time()) + 86_400}, secret, algorithm="HS256")


class Server:
    """One Centrifugo process on loopback, configured by `config`; its log in `base_dir`."""

    def __init__(self, exe: Path, base_dir: Path, port: int, redis_url: str) -> None:
        self.secret, self.api_key = secrets.token_hex(32), secrets.token_hex(16)
        self.port = port
        base_dir.mkdir(parents=True, exist_ok=True)
        path = base_dir / "centrifugo.json"
        path.write_text(json.dumps(config(port, redis_url, self.secret, self.api_key), indent=2))
        self.log = base_dir / "centrifugo.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(exe), "--config", str(path)],
                cwd=base_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._api: httpx.AsyncClient | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    def wait_ready(self) -> None:
        try:
            wait_http(f"http://127.0.0.1:{self.port}/health", self.proc, timeout=60)
        except RuntimeError as e:
            raise RuntimeError(f"{e}; its log: {self.log.read_text()[-2000:]}") from e

    def token(self, user_id: object) -> str:
        return token(self.secret, user_id)

    async def open_api(self) -> None:
        """The publisher's keep-alive connection to the server API, opened (and its key checked)
        before any clock starts, as a backend's connection to Centrifugo is."""
        self._api = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.port}", headers={"X-API-Key": self.api_key}, timeout=60
        )
        r = await self._api.post("/api/info", json={})
        r.raise_for_status()
        if "result" not in r.json():
            raise RuntimeError(f"centrifugo /api/info: {r.text}")

    async def broadcast(self, channels: list[str], data: dict[str, Any]) -> None:
        """One server API call publishing `data` to every channel (each into its history)."""
        assert self._api is not None, "open_api first"
        r = await self._api.post("/api/broadcast", json={"channels": channels, "data": data})
        r.raise_for_status()
        body = r.json()
        failed = [x for x in body.get("result", {}).get("responses", []) if x.get("error")]
        if "error" in body or failed or not body.get("result"):
            raise RuntimeError(f"centrifugo broadcast failed: {body.get('error') or failed[:3] or body}")

    async def aclose(self) -> None:
        if self._api is not None:
            await self._api.aclose()


def replies(frame: str | bytes) -> list[dict[str, Any]]:
    """The replies, pushes and pings (`{}`) one frame carries, a JSON object per line."""
    text = frame.decode() if isinstance(frame, bytes) else frame
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Socket:
    """A client connection: answers pings, matches replies to commands, and turns every
    publication pushed to it into (latency, arrival time) from the `t` its data carries."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pushes: asyncio.Queue[tuple[float, float] | None] = asyncio.Queue()
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                now = time.time()
                for msg in replies(frame):
                    if not msg:
                        await self.ws.send("{}")  # the pong
                    elif "push" in msg:
                        pub = msg["push"].get("pub")
                        if pub is not None:
                            self.pushes.put_nowait((now - float(pub["data"]["t"]), now))
                    elif (fut := self._waiting.pop(msg.get("id", 0), None)) is not None:
                        fut.set_result(msg)
        except ConnectionClosed:
            pass
        finally:
            self.pushes.put_nowait(None)
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(RuntimeError(f"centrifugo closed the socket: {self._closed()}"))

    def _closed(self) -> str:
        return f"code {self.ws.close_code}, {self.ws.close_reason!r}"

    async def command(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[self._next_id] = fut
        await self.ws.send(json.dumps({"id": self._next_id, method: params}))
        reply = await asyncio.wait_for(fut, 120)
        if "error" in reply or method not in reply:
            raise RuntimeError(f"centrifugo {method} refused: {reply}")
        return reply[method]  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def open_sockets(url: str, n: int, tokens: list[str], channels: list[str | None]) -> list[Socket]:
    """`n` sockets; socket i connects with `tokens[i % len]` and follows `channels[i % len]`."""
    sem = asyncio.Semaphore(200)

    async def one(i: int) -> Socket:
        async with sem:
            ws = await connect(url, open_timeout=120, compression=None)
            sock = Socket(ws)
            await sock.command("connect", {"token": tokens[i % len(tokens)], "name": "kirana-bench"})
            follow = channels[i % len(channels)]
            if follow:
                await sock.command("subscribe", {"channel": follow})
            return sock

    return list(await asyncio.gather(*[one(i) for i in range(n)]))


async def receive(sock: Socket, count: int, latencies: list[float], done: list[float]) -> None:
    """`count` publications on `sock` (as bench_realtime's `_receive` reads Kirana's)."""
    last = 0.0
    for _ in range(count):
        got = await asyncio.wait_for(sock.pushes.get(), 120)
        if got is None:
            raise RuntimeError(f"centrifugo closed a socket mid-run: {sock._closed()}")
        latencies.append(got[0])
        last = got[1]
    done.append(last)
