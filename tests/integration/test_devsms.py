"""The local SMS gateway of `kirana run` speaks the protocol the shop's HTTP provider sends, and
its inbox gives back what was sent to a number (how the load test reads sign-up codes)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kirana.api.devsms import FakeSmsServer
from kirana.api.errors import Unavailable
from kirana.api.notify.providers import HttpSms


@pytest.fixture
def gateway() -> Iterator[FakeSmsServer]:
    server = FakeSmsServer().start()
    yield server
    server.stop()


async def test_the_shop_sends_through_it_and_the_inbox_reads_it_back(gateway: FakeSmsServer) -> None:
    env = gateway.env()
    sms = HttpSms(url=env["KIRANA_SMS_GATEWAY_URL"], token=env["KIRANA_SMS_GATEWAY_TOKEN"], sender="KIRANA",
                  entity_id="", template_id="")  # fmt: skip
    try:
        message_id = await sms.send(to="+919845012345", text="Your Kirana sign-up code: 492039")
        await sms.send(to="+919845099999", text="someone else's")
    finally:
        await sms.aclose()
    assert message_id.startswith("devsms-")
    found = httpx.get(f"{gateway.base_url}/messages", params={"to": "+919845012345"}).json()["messages"]
    assert [m["text"] for m in found] == ["Your Kirana sign-up code: 492039"]


async def test_a_wrong_token_is_refused(gateway: FakeSmsServer) -> None:
    sms = HttpSms(
        url=gateway.base_url + "/", token="not-the-token", sender="KIRANA", entity_id="", template_id=""
    )
    try:
        with pytest.raises(Unavailable):
            await sms.send(to="+919845012345", text="hello")
    finally:
        await sms.aclose()
    assert httpx.get(f"{gateway.base_url}/messages").json()["messages"] == []
