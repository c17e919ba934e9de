"""UPI as it works since NPCI phased out Collect for most merchants (February 2026): intent
(the `upi://pay` link that opens the customer's app) and the same link as a QR code, with
Collect (validate the VPA, then a request the customer approves) only when
`KIRANA_PAYMENTS_UPI_COLLECT_ENABLED` says the merchant is still allowed it.

The per-transaction UPI limit is checked before Razorpay is asked. Called by the UPI route;
status reaches the order by webhook, the reconciler, or the client's verify call. No HTTP.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

import segno
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.errors import InvalidInput, InvalidState
from kirana.api.orders.models import Order
from kirana.api.payments import service as payments
from kirana.api.payments.gateway import Gateway, GatewayRefused, GatewayUnavailable


class UpiLimitExceeded(InvalidInput):
    status, code, title = 422, "upi-limit-exceeded", "Above the UPI transaction limit"


class VpaInvalid(InvalidInput):
    status, code, title = 422, "upi-vpa-invalid", "UPI id invalid"


class CollectUnavailable(InvalidState):
    status, code, title = 409, "upi-collect-unavailable", "UPI Collect not offered"


class PaymentExpired(InvalidState):
    status, code, title = 410, "payment-expired", "Payment expired"


# Razorpay's `error_reason` → the problem a client can act on.
FAILURE_PROBLEMS: dict[str, type[InvalidInput] | type[InvalidState]] = {
    "payment_declined": payments.PaymentDeclined,
    "payment_failed": payments.PaymentDeclined,
    "invalid_vpa": VpaInvalid,
    "payment_timed_out": PaymentExpired,
    "payment_expired": PaymentExpired,
    "transaction_limit_exceeded": UpiLimitExceeded,
    "amount_exceeds_maximum_amount_allowed": UpiLimitExceeded,
}


def failure_problem(reason: str) -> InvalidInput | InvalidState:
    cls = FAILURE_PROBLEMS.get(reason, payments.PaymentDeclined)
    return cls(f"the payment failed: {reason.replace('_', ' ')}", extra={"reason": reason})


@dataclass(frozen=True)
class UpiStarted:
    flow: str
    razorpay_order_id: str
    razorpay_payment_id: str
    intent_url: str | None
    qr_svg: str | None


def qr_svg(link: str) -> str:
    buf = io.BytesIO()
    segno.make(link, error="m").save(buf, kind="svg", scale=4)
    return buf.getvalue().decode()


async def start(
    session: AsyncSession,
    *,
    gateway: Gateway,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    flow: str,
    vpa: str | None,
    email: str,
    contact: str,
    limit_paise: int,
    collect_enabled: bool,
    retry_after_s: int,
) -> UpiStarted:
    if flow == "collect" and not collect_enabled:
        raise CollectUnavailable("UPI Collect is not offered; pay with the UPI app (intent) or the QR code")
    order = await session.get(Order, order_id)
    if order is not None and order.user_id == user_id and order.due_paise > limit_paise:
        raise UpiLimitExceeded(
            f"UPI takes at most {limit_paise} paise per transaction", extra={"limit_paise": limit_paise}
        )
    info = await payments.start_checkout(
        session,
        gateway=gateway,
        order_id=order_id,
        user_id=user_id,
        methods=("upi",),
        retry_after_s=retry_after_s,
    )
    if info.amount_paise > limit_paise:
        raise UpiLimitExceeded(
            f"UPI takes at most {limit_paise} paise per transaction", extra={"limit_paise": limit_paise}
        )
    upi: dict[str, str] = {"flow": flow}
    try:
        if flow == "collect":
            assert vpa is not None
            check = await gateway.call(gateway.client.payment.validateVpa, {"vpa": vpa})
            if not check.get("success"):
                raise VpaInvalid("this UPI id does not exist", extra={"reason": "invalid_vpa"})
            upi["vpa"] = vpa
        made = await gateway.call(
            gateway.client.payment.createUpi,
            {
                "amount": info.amount_paise,
                "currency": info.currency,
                "order_id": info.razorpay_order_id,
                "method": "upi",
                "email": email,
                "contact": contact,
                "upi": upi,
            },
        )
    except GatewayUnavailable as exc:
        raise payments.unavailable(exc, retry_after_s=retry_after_s, operation="payment.create_upi") from exc
    except GatewayRefused as exc:
        if "vpa" in str(exc).lower():
            raise VpaInvalid("this UPI id is not valid", extra={"reason": "invalid_vpa"}) from exc
        raise InvalidState(f"Razorpay refused the UPI payment: {exc}") from exc
    link = made.get("link")
    return UpiStarted(
        flow=flow,
        razorpay_order_id=info.razorpay_order_id,
        razorpay_payment_id=made["razorpay_payment_id"],
        intent_url=link,
        qr_svg=qr_svg(link) if link else None,
    )
