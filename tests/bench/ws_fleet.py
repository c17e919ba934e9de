"""WebSocket client load spread over several processes, for the real-time benchmark.

One Python process cannot hold the benchmark's sockets: the machine caps open files per process
(20,000 here, `ulimit -Hn`), and one event loop parsing every frame of a 5,000-socket fan-out
is the ceiling before the server is. `Fleet` starts `python -m tests.bench.ws_fleet` children,
each opening at most `PER_PROCESS` sockets of one of three protocols (Kirana's, the bare
broadcast's, Centrifugo's), and speaks to each over its stdin/stdout, a JSON object per line:

    parent -> child  {"protocol", "url", "n", "start", "offers", "channels", "tokens"}
    child -> parent  {"opened": n, "seconds": s}
    parent -> child  {"receive": count}        (or {"close": true})
    child -> parent  {"ready": true}           (its readers wait; the parent may publish)
    child -> parent  {"latencies": [...], "done": [...]}

Socket i (counted across the whole fleet, from `start`) offers `offers[i % len]`, connects
with `tokens[i % len]` and follows `channels[i % len]`, as one process's sockets did before.
Used by `bench_realtime`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

PER_PROCESS = 4000
REPO = Path(__file__).resolve().parents[2]


async def _open_kirana(spec: dict[str, Any]) -> list[ClientConnection]:
    sem = asyncio.Semaphore(200)
    offers: list[list[str]] = spec.get("offers") or []
    channels: list[str | None] = spec.get("channels") or [None]

    async def one(i: int) -> ClientConnection:
        offered = offers[i % len(offers)] if offers else []
        follow = channels[i % len(channels)]
        async with sem:
            ws = await connect(spec["url"], subprotocols=offered or None, open_timeout=120, compression=None)  # type: ignore[arg-type]
            if follow:
                await ws.send(json.dumps({"op": "subscribe", "channel": follow}))
                first = json.loads(await ws.recv())
                if first.get("type") != "subscribed":
                    raise RuntimeError(f"subscribe refused: {first}")
            return ws

    start = int(spec.get("start", 0))
    return list(await asyncio.gather(*[one(start + i) for i in range(int(spec["n"]))]))


async def _receive_kirana(
    ws: ClientConnection, count: int, latencies: list[float], done: list[float]
) -> None:
    for _ in range(count):
        msg = json.loads(await asyncio.wait_for(ws.recv(), 120))
        latencies.append(time.time() - float(msg["data"]["t"]))
    done.append(time.time())


async def _child() -> None:
    from tests.bench import realtime_peer  # the Centrifugo protocol's client side

    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )

    def say(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    spec = json.loads(await reader.readline())
    t0 = time.monotonic()
    if spec["protocol"] == "centrifugo":
        start = int(spec.get("start", 0))
        tokens, channels = spec["tokens"], spec.get("channels") or [None]
        # open_sockets counts from 0: rotate the lists so socket i of the fleet gets its own
        tokens = tokens[start % len(tokens) :] + tokens[: start % len(tokens)]
        channels = channels[start % len(channels) :] + channels[: start % len(channels)]
        sockets: list[Any] = await realtime_peer.open_sockets(spec["url"], int(spec["n"]), tokens, channels)
        receive: Any = realtime_peer.receive
    else:
        sockets = await _open_kirana(spec)
        receive = _receive_kirana
    say({"opened": len(sockets), "seconds": time.monotonic() - t0})
    order = json.loads(await reader.readline())
    if "receive" in order:
        latencies: list[float] = []
        done: list[float] = []
        tasks = [asyncio.create_task(receive(s, int(order["receive"]), latencies, done)) for s in sockets]
        say({"ready": True})
        await asyncio.gather(*tasks)
        say({"latencies": latencies, "done": done})
    await asyncio.gather(*[s.close() for s in sockets], return_exceptions=True)


class Fleet:
    """`n` sockets over ceil(n / PER_PROCESS) client processes (`open` first)."""

    def __init__(self, protocol: str, url: str, n: int, **lists: list[Any]) -> None:
        self.protocol, self.url, self.n, self.lists = protocol, url, n, lists
        self.procs: list[asyncio.subprocess.Process] = []
        self.connect_s = 0.0

    async def _line(self, proc: asyncio.subprocess.Process, key: str) -> Any:
        """The next report of `proc`, which must carry `key`."""
        assert proc.stdout is not None
        raw = await proc.stdout.readline()
        if not raw:
            await proc.wait()
            raise RuntimeError(f"a client process exited ({proc.returncode}) before it sent {key!r}")
        return json.loads(raw)

    async def _tell(self, obj: dict[str, Any]) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write((json.dumps(obj) + "\n").encode())
            await proc.stdin.drain()

    async def open(self) -> Fleet:
        """Every socket open (and subscribed when following); `connect_s` is how long it took.
        When any process fails, the others are stopped before the error is raised."""
        try:
            return await self._open()
        except BaseException:
            await self.close()
            raise

    async def _open(self) -> Fleet:
        t0 = time.monotonic()
        shares = max(1, math.ceil(self.n / PER_PROCESS))
        start = 0
        for k in range(shares):
            n = self.n // shares + (1 if k < self.n % shares else 0)
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.bench.ws_fleet",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=2**26,  # the latency report is one long line
                cwd=REPO,
                env=os.environ | {"PYTHONPATH": str(REPO)},
            )
            self.procs.append(proc)
            spec = {"protocol": self.protocol, "url": self.url, "n": n, "start": start, **self.lists}
            assert proc.stdin is not None
            proc.stdin.write((json.dumps(spec) + "\n").encode())
            await proc.stdin.drain()
            start += n
        opened = [r["opened"] for r in await asyncio.gather(*[self._line(p, "opened") for p in self.procs])]
        self.connect_s = time.monotonic() - t0
        if sum(opened) != self.n:
            raise RuntimeError(f"opened {sum(opened)} of {self.n} sockets")
        return self

    async def receiving(self, count: int) -> asyncio.Task[tuple[list[float], list[float]]]:
        """Every socket reading `count` messages (returns once all readers wait); the task gives
        every latency (s) and each socket's last arrival time."""
        await self._tell({"receive": count})
        await asyncio.gather(*[self._line(p, "ready") for p in self.procs])

        async def gathered() -> tuple[list[float], list[float]]:
            lat: list[float] = []
            done: list[float] = []
            for proc in self.procs:
                got = await self._line(proc, "latencies")
                lat += got["latencies"]
                done += got["done"]
            for proc in self.procs:
                await proc.wait()
            return lat, done

        return asyncio.create_task(gathered())

    async def close(self) -> None:
        """Every socket closed and every client process gone."""
        for proc in self.procs:
            if proc.returncode is None and proc.stdin is not None and not proc.stdin.is_closing():
                try:
                    proc.stdin.write(b'{"close": true}\n')
                    await proc.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    pass
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()


if __name__ == "__main__":
    asyncio.run(_child())
