"""A local SMS gateway speaking the protocol of `notify.providers.HttpSms`, with an inbox.

Started by `kirana run` when no SMS provider is configured, so that a shop on a laptop sends
its codes (sign-up, two-factor, resets) over real HTTP the way production does, and a person
or a load test reads them back as the owner of the number reads their phone:
`GET {base_url}/messages?to=+919845012345` lists what was sent to that number, oldest first.
Development only: it keeps the last `KEEP` messages in memory and delivers nothing.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections import deque
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DEV_TOKEN = "kirana-dev-sms-token"  # the fake's own, development only
KEEP = 10_000


def create_app(token: str = DEV_TOKEN) -> Starlette:
    inbox: deque[dict[str, Any]] = deque(maxlen=KEEP)
    ids = itertools.count(1)
    lock = threading.Lock()

    async def send(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body = await request.json()
        if not isinstance(body, dict) or not body.get("to") or not isinstance(body.get("text"), str):
            return JSONResponse({"error": "to and text are required"}, status_code=400)
        with lock:
            message = {"id": f"devsms-{next(ids)}", "to": str(body["to"]), "text": body["text"]}
            inbox.append(message | {"at": time.time()})
        return JSONResponse({"id": message["id"]})

    async def messages(request: Request) -> JSONResponse:
        to = request.query_params.get("to")
        with lock:
            found = [m for m in inbox if to is None or m["to"] == to]
        return JSONResponse({"messages": found})

    return Starlette(routes=[Route("/", send, methods=["POST"]), Route("/messages", messages)])


class FakeSmsServer:
    """`start()` binds 127.0.0.1 (port 0: any free one); `base_url` is the gateway URL."""

    def __init__(self, *, port: int = 0, token: str = DEV_TOKEN) -> None:
        self.token = token
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(token), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> FakeSmsServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the local SMS gateway did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def env(self) -> dict[str, str]:
        """The shop's settings that send its SMS here."""
        return {
            "KIRANA_SMS_PROVIDER": "http",
            "KIRANA_SMS_GATEWAY_URL": self.base_url + "/",
            "KIRANA_SMS_GATEWAY_TOKEN": self.token,
        }
