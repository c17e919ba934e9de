"""The official `razorpay` SDK's traps, shown against the fake Razorpay, and how the shop's
gateway avoids each: refund's two definitions, capture writing into its dict, webhook
signatures over re-serialised JSON, no default timeout, retries that repeat POSTs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import razorpay
from razorpay.errors import BadRequestError, SignatureVerificationError

from kirana.api.devrazorpay.server import FakeServer
from kirana.api.payments.gateway import Gateway, GatewayConfig, GatewayUnavailable


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer(key_id="rzp_test_traps", key_secret="traps-secret", webhook_secret="traps-wh").start()
    try:
        yield s
    finally:
        s.stop()


def gateway(s: FakeServer, timeout_s: float = 2.0) -> Gateway:
    return Gateway(
        GatewayConfig(s.account.key_id, s.account.key_secret, ("traps-wh",), s.base_url, timeout_s)
    )


def bare(s: FakeServer, **options: object) -> razorpay.Client:
    return razorpay.Client(auth=(s.account.key_id, s.account.key_secret), base_url=s.base_url, **options)


def captured_payment(s: FakeServer) -> dict[str, object]:
    o = s.account.create_order({"amount": 50_000, "currency": "INR", "receipt": "t"})
    p = s.account.pay(o["id"], method="card")
    return s.account.capture(p["id"], {"amount": 50_000})


async def test_refund_is_defined_twice_and_the_later_signature_wins(server: FakeServer) -> None:
    p = captured_payment(server)
    with pytest.raises(BadRequestError):  # refund(payment_id, amount): the amount is sent as the body
        bare(server).payment.refund(p["id"], 10_000)
    r = await gateway(server).refund(str(p["id"]), amount=10_000, key="k-1", notes={})
    again = await gateway(server).refund(str(p["id"]), amount=10_000, key="k-1", notes={})
    assert r["amount"] == 10_000 and again["id"] == r["id"]  # X-Refund-Idempotency: one refund
    assert len(server.account.refunds) == 1


async def test_capture_writes_the_amount_into_the_dict_it_is_given(server: FakeServer) -> None:
    defaults = razorpay.resources.payment.Payment.capture.__defaults__
    before = json.dumps(defaults)
    o = server.account.create_order({"amount": 20_000, "currency": "INR", "receipt": "t"})
    ours = server.account.pay(o["id"], method="card")
    await gateway(server).capture(str(ours["id"]), amount=20_000, currency="INR")
    assert json.dumps(defaults) == before  # the gateway passes a fresh dict each time
    theirs = server.account.pay(o["id"], method="card")
    data = {"currency": "INR"}
    bare(server).payment.capture(theirs["id"], 20_000, data)
    assert data == {"currency": "INR", "amount": 20_000}


def test_webhook_signature_is_over_the_raw_body_not_reserialised_json(server: FakeServer) -> None:
    o = server.account.create_order({"amount": 10_000, "currency": "INR", "receipt": "t"})
    server.account.pay(o["id"], method="upi")
    [d] = server.fake.deliveries()
    sig = d.headers["X-Razorpay-Signature"]
    client = bare(server)
    assert client.utility.verify_webhook_signature(d.body.decode(), sig, "traps-wh")
    with pytest.raises(SignatureVerificationError):
        client.utility.verify_webhook_signature(json.dumps(json.loads(d.body)), sig, "traps-wh")
    assert gateway(server).webhook_signature_ok(raw_body=d.body, signature=sig)
    assert not gateway(server).webhook_signature_ok(
        raw_body=json.dumps(json.loads(d.body)).encode(), signature=sig
    )


async def test_the_sdk_sets_no_timeout_the_gateway_always_does(server: FakeServer) -> None:
    o = server.account.create_order({"amount": 10_000, "currency": "INR", "receipt": "t"})
    server.fake.faults.delay_s = 1.5
    assert bare(server).order.fetch(o["id"])["id"] == o["id"]  # waited as long as it took
    with pytest.raises(GatewayUnavailable):
        await gateway(server, timeout_s=0.3).call(gateway(server, timeout_s=0.3)._fetch_payment, "pay_x")


async def test_the_sdk_retry_option_repeats_posts_and_duplicates_orders(server: FakeServer) -> None:
    server.fake.faults.delay_s = 0.6
    client = bare(server, max_retries=3, initial_delay=0.01, max_delay=0.05)
    client.enable_retry(True)
    with pytest.raises(Exception):  # noqa: B017 - the SDK re-raises requests' own Timeout
        client.order.create({"amount": 10_000, "currency": "INR", "receipt": "dup"}, timeout=0.2)
    deadline = time.monotonic() + 10
    while len(server.account.orders) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(server.account.orders) == 3  # one order asked for, three created
    server.account.orders.clear()
    g = gateway(server, timeout_s=0.2)
    assert g.client.retry_enabled is False
    with pytest.raises(GatewayUnavailable):
        await g.create_order(amount=10_000, currency="INR", receipt="once", notes={})
    time.sleep(1.0)
    assert len(server.account.orders) == 1
