"""The fake Razorpay's HTTP surface: Razorpay's `/v1` routes as the SDK calls them, plus `/_dev`
routes that play the customer (Checkout, UPI app) and steer faults.

Razorpay habits kept on purpose: HTTP basic auth with the key id and secret; errors as
`{"error": {"code", "description", ...}}` where an unknown id is a 400 `BAD_REQUEST_ERROR`;
list endpoints answer `{"entity": "collection", "count", "items"}`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kirana.api.devrazorpay.store import Account, RazorpayError, sign

Handler = Callable[[Request], Awaitable[Any]]


@dataclass
class Faults:
    """How the fake misbehaves: `delay_s` before every API answer (after the work); the next `fail_count` API
    requests (-1: all) answer `fail_status` with Razorpay's server error body."""

    delay_s: float = 0.0
    fail_status: int = 500
    fail_count: int = 0


@dataclass
class WebhookPolicy:
    """How webhooks reach the shop: each event sent `copies` times, the lot shuffled, each
    delivery dropped with probability `drop_rate`, sent `delay_s` after it happened."""

    copies: int = 1
    shuffle: bool = False
    drop_rate: float = 0.0
    delay_s: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class Delivery:
    event_id: str
    event: str
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeRazorpay:
    account: Account
    faults: Faults = field(default_factory=Faults)
    webhooks: WebhookPolicy = field(default_factory=WebhookPolicy)
    dropped: int = 0

    def deliveries(self) -> list[Delivery]:
        """Take every pending event and turn it into the deliveries the policy makes of it
        (duplicated, shuffled, some dropped); the caller posts them to the shop."""
        rng = random.Random(self.webhooks.seed)
        out: list[Delivery] = []
        for ev in self.account.take_events():
            event_id = ev.pop("_id")
            body = json.dumps(ev, separators=(",", ":")).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Razorpay-Signature": sign(self.account.webhook_secret, body.decode()),
                "X-Razorpay-Event-Id": event_id,
                "User-Agent": "Razorpay-Webhook/v1",
            }
            for _ in range(max(1, self.webhooks.copies)):
                if self.webhooks.drop_rate and rng.random() < self.webhooks.drop_rate:
                    self.dropped += 1
                    continue
                out.append(Delivery(event_id, ev["event"], body, headers))
        if self.webhooks.shuffle:
            rng.shuffle(out)
        return out


def _auth_ok(fake: FakeRazorpay, request: Request) -> bool:
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return False
    try:
        key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return key == fake.account.key_id and secret == fake.account.key_secret


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise RazorpayError("The request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise RazorpayError("The request body must be an object")
    return data


def _window(request: Request) -> tuple[int, int, int, int]:
    """`from`, `to`, `count` (Razorpay's default 10) and `skip` of a list request."""
    q = request.query_params
    try:
        return int(q.get("from", 0)), int(q.get("to", 2**62)), int(q.get("count", 10)), int(q.get("skip", 0))
    except ValueError:
        raise RazorpayError("from, to, count and skip must be integers") from None


def create_app(fake: FakeRazorpay) -> Starlette:
    acct = fake.account

    def api(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Any:
            answer = await respond(request)
            if fake.faults.delay_s:  # the work is done; only the answer is late (as when a
                await asyncio.sleep(fake.faults.delay_s)  # client times out on a slow Razorpay)
            return answer

        async def respond(request: Request) -> Any:
            if fake.faults.fail_count:
                if fake.faults.fail_count > 0:
                    fake.faults.fail_count -= 1
                err = RazorpayError(
                    "The server encountered an error. The incident has been reported to admins.",
                    status=fake.faults.fail_status,
                    code="SERVER_ERROR",
                    reason="server_error",
                )
                return JSONResponse(err.body(), status_code=err.status)
            if not _auth_ok(fake, request):
                return JSONResponse(
                    RazorpayError("Authentication failed", status=401).body(), status_code=401
                )
            try:
                return JSONResponse(await handler(request))
            except RazorpayError as err:
                return JSONResponse(err.body(), status_code=err.status)

        return endpoint

    def p(request: Request, name: str) -> str:
        return str(request.path_params[name])

    async def create_order(r: Request) -> Any:
        return acct.create_order(await _json(r))

    async def fetch_order(r: Request) -> Any:
        return acct.order(p(r, "id"))

    async def order_payments(r: Request) -> Any:
        return acct.order_payments(p(r, "id"))

    async def list_payments(r: Request) -> Any:
        return acct.list_payments(*_window(r))

    async def fetch_payment(r: Request) -> Any:
        return acct.payment(p(r, "id"))

    async def capture(r: Request) -> Any:
        return acct.capture(p(r, "id"), await _json(r))

    async def refund(r: Request) -> Any:
        return acct.refund(p(r, "id"), await _json(r), r.headers.get("x-refund-idempotency"))

    async def payment_refunds(r: Request) -> Any:
        return acct.payment_refunds(p(r, "id"))

    async def list_refunds(r: Request) -> Any:
        return acct.list_refunds(*_window(r))

    async def fetch_refund(r: Request) -> Any:
        return acct.refund_entity(p(r, "id"))

    async def create_customer(r: Request) -> Any:
        return acct.create_customer(await _json(r))

    async def fetch_customer(r: Request) -> Any:
        return acct.customer(p(r, "id"))

    async def tokens(r: Request) -> Any:
        return acct.customer_tokens(p(r, "id"))

    async def delete_token(r: Request) -> Any:
        return acct.delete_token(p(r, "id"), p(r, "token"))

    async def validate_vpa(r: Request) -> Any:
        return acct.validate_vpa(str((await _json(r)).get("vpa", "")))

    async def create_upi(r: Request) -> Any:
        return acct.create_upi(await _json(r))

    # -- the customer's side and the knobs (not Razorpay's API) --------------------------

    async def dev_pay(r: Request) -> Any:
        """Checkout: pay an order; answers what Checkout's handler receives on success."""
        d = await _json(r)
        payment = acct.pay(
            str(d["order_id"]),
            method=str(d.get("method", "card")),
            outcome=str(d.get("outcome", "approved")),
            vpa=d.get("vpa"),
            amount=d.get("amount"),
            customer_id=d.get("customer_id"),
            token_id=d.get("token_id"),
            save=bool(d.get("save", False)),
        )
        if payment["status"] == "failed":
            return {
                "error": {"code": "BAD_REQUEST_ERROR", "reason": payment["error_reason"]},
                "razorpay_payment_id": payment["id"],
            }
        return {
            "razorpay_payment_id": payment["id"],
            "razorpay_order_id": payment["order_id"],
            "razorpay_signature": acct.checkout_signature(payment["order_id"], payment["id"]),
        }

    async def dev_intent(r: Request) -> Any:
        d = await _json(r)
        payment = acct.complete_intent(str(d["payment_id"]), approved=bool(d.get("approved", True)))
        return {
            "razorpay_payment_id": payment["id"],
            "razorpay_order_id": payment["order_id"],
            "razorpay_signature": acct.checkout_signature(payment["order_id"], payment["id"]),
        }

    async def dev_refund(r: Request) -> Any:
        """The bank's answer to a pending refund (`processed`: true or false)."""
        d = await _json(r)
        return acct.settle_refund(str(d["refund_id"]), processed=bool(d.get("processed", True)))

    async def dev_faults(r: Request) -> Any:
        d = await _json(r)
        for k, v in d.items():
            if hasattr(fake.faults, k):
                setattr(fake.faults, k, v)
            elif hasattr(fake.webhooks, k):
                setattr(fake.webhooks, k, v)
        return {"faults": vars(fake.faults), "webhooks": vars(fake.webhooks)}

    def dev(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Any:
            try:
                return JSONResponse(await handler(request))
            except RazorpayError as err:
                return JSONResponse(err.body(), status_code=err.status)

        return endpoint

    routes = [
        Route("/v1/orders", api(create_order), methods=["POST"]),
        Route("/v1/orders/{id}", api(fetch_order), methods=["GET"]),
        Route("/v1/orders/{id}/payments", api(order_payments), methods=["GET"]),
        Route("/v1/payments", api(list_payments), methods=["GET"]),
        Route("/v1/payments/validate/vpa", api(validate_vpa), methods=["POST"]),
        Route("/v1/payments/create/upi", api(create_upi), methods=["POST"]),
        Route("/v1/payments/{id}", api(fetch_payment), methods=["GET"]),
        Route("/v1/payments/{id}/capture", api(capture), methods=["POST"]),
        Route("/v1/payments/{id}/refund", api(refund), methods=["POST"]),
        Route("/v1/payments/{id}/refunds", api(payment_refunds), methods=["GET"]),
        Route("/v1/refunds", api(list_refunds), methods=["GET"]),
        Route("/v1/refunds/{id}", api(fetch_refund), methods=["GET"]),
        Route("/v1/customers", api(create_customer), methods=["POST"]),
        Route("/v1/customers/{id}", api(fetch_customer), methods=["GET"]),
        Route("/v1/customers/{id}/tokens", api(tokens), methods=["GET"]),
        Route("/v1/customers/{id}/tokens/{token}", api(delete_token), methods=["DELETE"]),
        Route("/_dev/pay", dev(dev_pay), methods=["POST"]),
        Route("/_dev/intent", dev(dev_intent), methods=["POST"]),
        Route("/_dev/refund", dev(dev_refund), methods=["POST"]),
        Route("/_dev/faults", dev(dev_faults), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def now() -> int:
    return int(time.time())
