"""The one place the shop talks to Razorpay: the official SDK, wrapped so its traps are closed.

- Every call carries a timeout (the SDK sets none) through a session that always adds one.
- The SDK's retry option is never enabled: it retries POSTs too, which can create duplicate
  orders and refunds. Idempotency is ours (refunds carry `X-Refund-Idempotency`).
- `payment.capture` writes the amount into the dict it is given (and its default is a shared
  mutable dict): every call gets a fresh dict.
- `payment.refund` is defined twice in the SDK; the later `(payment_id, data)` signature wins.
- Webhook signatures are checked over the raw body as text, never re-serialised JSON.
The SDK is synchronous; async callers go through `asyncio.to_thread`. Failures of Razorpay
itself (timeouts, 5xx, connection refused) become `GatewayUnavailable`; its 4xx answers
`GatewayRefused` with Razorpay's description.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import razorpay  # type: ignore[import-untyped]
import requests
from razorpay.errors import BadRequestError, GatewayError, ServerError, SignatureVerificationError  # type: ignore[import-untyped]

T = TypeVar("T")
PAGE = 100  # Razorpay's largest `count` for list calls


class GatewayUnavailable(Exception):
    """Razorpay did not answer in time, answered 5xx, or could not be reached."""


class GatewayRefused(Exception):
    """Razorpay refused the request (its BAD_REQUEST_ERROR), with its description."""


class _TimeoutSession(requests.Session):
    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout_s)
        return super().request(*args, **kwargs)


@dataclass(frozen=True)
class GatewayConfig:
    key_id: str
    key_secret: str
    webhook_secrets: tuple[str, ...]
    base_url: str
    timeout_s: float


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.client = razorpay.Client(
            session=_TimeoutSession(config.timeout_s),
            auth=(config.key_id, config.key_secret),
            base_url=config.base_url.rstrip("/"),
        )
        self.client.set_app_details({"title": "Kirana", "version": "1"})

    # -- signatures (no network) ---------------------------------------------------------

    def checkout_signature_ok(self, *, order_id: str, payment_id: str, signature: str) -> bool:
        try:
            return bool(
                self.client.utility.verify_payment_signature(
                    {
                        "razorpay_order_id": order_id,
                        "razorpay_payment_id": payment_id,
                        "razorpay_signature": signature,
                    }
                )
            )
        except SignatureVerificationError:
            return False

    def webhook_signature_ok(self, *, raw_body: bytes, signature: str) -> bool:
        """Current secret, then the previous one during a rotation. The raw bytes as text."""
        try:
            text = raw_body.decode("utf-8")
        except UnicodeDecodeError:
            return False
        for secret in self.config.webhook_secrets:
            try:
                if self.client.utility.verify_webhook_signature(text, signature, secret):
                    return True
            except SignatureVerificationError:
                continue
        return False

    # -- API calls (blocking; use `call`) -----------------------------------------------

    def _create_order(
        self, *, amount: int, currency: str, receipt: str, notes: dict[str, str]
    ) -> dict[str, Any]:
        data = {
            "amount": amount,
            "currency": currency,
            "receipt": receipt,
            "notes": notes,
            "payment_capture": 0,
        }
        return dict(self.client.order.create(data))

    def _order_payments(self, order_id: str) -> list[dict[str, Any]]:
        return list(self.client.order.payments(order_id, {})["items"])

    def _fetch_payment(self, payment_id: str) -> dict[str, Any]:
        return dict(self.client.payment.fetch(payment_id, {}))

    def _capture(self, payment_id: str, *, amount: int, currency: str) -> dict[str, Any]:
        return dict(self.client.payment.capture(payment_id, amount, {"currency": currency}))

    def _refund(self, payment_id: str, *, amount: int, key: str, notes: dict[str, str]) -> dict[str, Any]:
        data = {"amount": amount, "speed": "normal", "notes": notes}
        return dict(self.client.payment.refund(payment_id, data, headers={"X-Refund-Idempotency": key}))

    @staticmethod
    def _all_pages(
        fetch: Callable[[dict[str, Any]], dict[str, Any]], since: int, until: int
    ) -> list[dict[str, Any]]:
        """Every item of a Razorpay list between two times, `PAGE` at a time (its maximum)."""
        out: list[dict[str, Any]] = []
        skip = 0
        while True:
            page = fetch({"from": since, "to": until, "count": PAGE, "skip": skip})
            out += page["items"]
            if len(page["items"]) < PAGE:
                return out
            skip += PAGE

    def _payments_between(self, since: int, until: int) -> list[dict[str, Any]]:
        return self._all_pages(self.client.payment.all, since, until)

    def _refunds_between(self, since: int, until: int) -> list[dict[str, Any]]:
        return self._all_pages(self.client.refund.all, since, until)

    def _fetch_refund(self, refund_id: str) -> dict[str, Any]:
        return dict(self.client.refund.fetch(refund_id, {}))

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise GatewayUnavailable(f"Razorpay did not answer: {type(exc).__name__}") from exc
        except (ServerError, GatewayError) as exc:
            raise GatewayUnavailable(f"Razorpay failed: {exc}") from exc
        except BadRequestError as exc:
            raise GatewayRefused(str(exc)) from exc
        except requests.RequestException as exc:
            raise GatewayUnavailable(f"Razorpay request failed: {exc}") from exc

    async def create_order(self, **kw: Any) -> dict[str, Any]:
        return await self.call(self._create_order, **kw)

    async def order_payments(self, order_id: str) -> list[dict[str, Any]]:
        return await self.call(self._order_payments, order_id)

    async def fetch_payment(self, payment_id: str) -> dict[str, Any]:
        return await self.call(self._fetch_payment, payment_id)

    async def capture(self, payment_id: str, *, amount: int, currency: str) -> dict[str, Any]:
        return await self.call(self._capture, payment_id, amount=amount, currency=currency)

    async def refund(
        self, payment_id: str, *, amount: int, key: str, notes: dict[str, str]
    ) -> dict[str, Any]:
        return await self.call(self._refund, payment_id, amount=amount, key=key, notes=notes)

    async def fetch_refund(self, refund_id: str) -> dict[str, Any]:
        return await self.call(self._fetch_refund, refund_id)

    async def payments_between(self, since: int, until: int) -> list[dict[str, Any]]:
        return await self.call(self._payments_between, since, until)

    async def refunds_between(self, since: int, until: int) -> list[dict[str, Any]]:
        return await self.call(self._refunds_between, since, until)


def config_from(settings: Any) -> GatewayConfig:
    """From `Settings` (typed loosely so this module stays free of the settings import cycle)."""
    secrets = tuple(
        s
        for s in (
            settings.razorpay_webhook_secret.get_secret_value(),
            settings.razorpay_webhook_secret_previous.get_secret_value(),
        )
        if s
    )
    return GatewayConfig(
        key_id=settings.razorpay_key_id,
        key_secret=settings.razorpay_key_secret.get_secret_value(),
        webhook_secrets=secrets,
        base_url=settings.razorpay_base_url,
        timeout_s=settings.razorpay_timeout_s,
    )
