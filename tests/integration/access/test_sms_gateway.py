"""The HTTP SMS provider against a local fake gateway speaking the same JSON protocol."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from kirana.api.app import create_app
from kirana.api.errors import Unavailable
from kirana.api.notify.providers import HttpSms
from kirana.api.settings import Settings
from tests.integration.access.helpers import login, make_user, step_up_with_password


@dataclass
class Gateway:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    state = Gateway(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server dispatches to
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.auth.append(self.headers.get("Authorization", ""))
            if state.fail_next:
                self.send_response(state.fail_next.pop(0))
                self.end_headers()
                return
            state.received.append(body)
            payload = json.dumps({"id": f"msg-{len(state.received)}", "status": "queued"}).encode()
            self.send_response(202)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1/sms"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _provider(gateway: Gateway) -> HttpSms:
    return HttpSms(url=gateway.url, token="gw-token", sender="KIRANA", entity_id="1101", template_id="1107")


async def test_sends_dlt_fields_and_bearer_token(gateway: Gateway) -> None:
    sms = _provider(gateway)
    try:
        assert await sms.send(to="+919845012345", text="123456 is your code") == "msg-1"
    finally:
        await sms.aclose()
    assert gateway.received == [
        {
            "sender": "KIRANA",
            "to": "+919845012345",
            "text": "123456 is your code",
            "dlt_entity_id": "1101",
            "dlt_template_id": "1107",
        }
    ]
    assert gateway.auth == ["Bearer gw-token"]


async def test_retries_a_5xx_once_then_gives_up(gateway: Gateway) -> None:
    sms = _provider(gateway)
    try:
        gateway.fail_next = [503]
        assert await sms.send(to="+919845012345", text="x") == "msg-1"
        gateway.fail_next = [503, 502]
        with pytest.raises(Unavailable):
            await sms.send(to="+919845012345", text="x")
        gateway.fail_next = [400]
        with pytest.raises(Unavailable):
            await sms.send(to="+919845012345", text="x")
    finally:
        await sms.aclose()


async def test_sms_two_factor_through_the_gateway(gateway: Gateway, settings: Settings) -> None:
    configured = settings.model_copy(
        update={"sms_provider": "http", "sms_gateway_url": gateway.url, "sms_dlt_template_id": "1107"}
    )
    app: FastAPI = create_app(configured, handle_signals=False)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
    ):
        account = await login(client, await make_user(app, phone="+919833344455"))
        await step_up_with_password(client, account)
        r = await client.post("/v1/auth/2fa/sms", headers=account.headers)
        assert r.status_code == 200, r.text
        sent = gateway.received[-1]
        assert sent["to"] == "+919833344455" and sent["dlt_template_id"] == "1107"
        code = sent["text"][:6]
        r = await client.post("/v1/auth/2fa/sms/confirm", headers=account.headers, json={"code": code})
        assert r.status_code == 204
        assert (await client.get("/v1/auth/2fa", headers=account.headers)).json()["sms"] is True
