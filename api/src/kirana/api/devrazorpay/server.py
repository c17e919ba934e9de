"""Run the fake Razorpay on a loopback port in a background thread, optionally posting its
webhooks to the shop. Used by `kirana run` (no Razorpay keys set) and the integration tests.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import httpx
import uvicorn

from kirana.api.devrazorpay.app import Delivery, FakeRazorpay, create_app
from kirana.api.devrazorpay.store import Account

log = logging.getLogger("kirana.devrazorpay")

DEV_KEY_ID = "rzp_test_kiranadev"
DEV_KEY_SECRET = "kirana-dev-key-secret"  # the fake's own, development only
DEV_WEBHOOK_SECRET = "kirana-dev-webhook-secret"


class FakeServer:
    """`start()` binds `host` (127.0.0.1 unless a container serves it; port 0: any free one);
    `base_url` is what the SDK is given. With `webhook_url`, a sender thread posts pending
    webhooks there as they happen."""

    def __init__(
        self,
        *,
        key_id: str = DEV_KEY_ID,
        key_secret: str = DEV_KEY_SECRET,
        webhook_secret: str = DEV_WEBHOOK_SECRET,
        port: int = 0,
        webhook_url: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.fake = FakeRazorpay(Account(key_id, key_secret, webhook_secret))
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{self.port}"
        config = uvicorn.Config(create_app(self.fake), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._webhook_url = webhook_url
        self._stop = threading.Event()
        self._sender: threading.Thread | None = None

    @property
    def account(self) -> Account:
        return self.fake.account

    def start(self) -> FakeServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Razorpay did not start")
            time.sleep(0.02)
        if self._webhook_url:
            self._sender = threading.Thread(target=self._send_loop, daemon=True)
            self._sender.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._sender:
            self._sender.join(timeout=10)
        self._sock.close()

    def _send_loop(self) -> None:
        assert self._webhook_url
        with httpx.Client(timeout=10) as http:
            while not self._stop.wait(0.2):
                batch = self.fake.deliveries()
                if batch and self.fake.webhooks.delay_s:
                    time.sleep(self.fake.webhooks.delay_s)
                for d in batch:
                    post(http, self._webhook_url, d)


def post(http: httpx.Client, url: str, d: Delivery) -> int:
    try:
        return http.post(url, content=d.body, headers=d.headers).status_code
    except httpx.HTTPError:
        log.warning("webhook not delivered", extra={"event": d.event, "event_id": d.event_id})
        return 0
