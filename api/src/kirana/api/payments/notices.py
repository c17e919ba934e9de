"""Messages to customers about their money: the automatic refund of a payment the shop could not
use (the order lapsed and its stock was gone, or the order was already paid).

`auto_refunded` is the workers' handler for the `payment.auto_refunded` outbox event
(`kirana.workers.consumers`): it sends an SMS to the account's phone, else an email, and
records that it did in the audit log, once per refund (a redelivered event sends nothing).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from kirana.api.accounts.models import User
from kirana.api.audit import service as audit
from kirana.api.audit.models import AuditEvent
from kirana.api.db.engine import Database
from kirana.api.notify.providers import Notifier
from kirana.api.payments import metrics

TOPIC = "payment.auto_refunded"
WHY = {
    "unfulfillable": "the order had lapsed and its items were no longer in stock",
    "duplicate": "the order had already been paid",
    "cash_on_delivery": "the order is to be paid in cash on delivery",
}


def rupees(paise: int) -> str:
    return f"₹{paise // 100:,}.{paise % 100:02d}"


def text_of(payload: dict[str, Any]) -> str:
    number = payload.get("order_number") or str(payload.get("order_id", ""))[:8]
    why = WHY.get(str(payload.get("reason")), "the payment could not be used")
    return (
        f"Kirana: we have refunded {rupees(int(payload['amount_paise']))} for order {number}, "
        f"because {why}. It reaches your account in 5-7 working days."
    )


async def auto_refunded(db: Database, notifier: Notifier, *, payload: dict[str, Any]) -> bool:
    """Tell the customer their payment is being refunded; False when nobody can be told or
    they were told already."""
    refund_id = str(payload.get("refund_id") or payload.get("payment_id"))
    async with db.session() as session:
        user = await session.get(User, uuid.UUID(str(payload["user_id"])))
        told = await session.scalar(
            select(AuditEvent.seq).where(
                AuditEvent.action == "payments.refund_notified", AuditEvent.target_id == refund_id
            )
        )
    if user is None or told is not None or not (user.phone or user.email):
        return False
    text = text_of(payload)
    if user.phone:
        await notifier.sms.send(to=user.phone, text=text)
        via = "sms"
    else:
        assert user.email is not None
        await notifier.email.send(to=user.email, subject="Your Kirana refund", text=text)
        via = "email"
    metrics.NOTICES.labels("auto_refund").inc()
    await audit.record_now(
        db,
        audit.SYSTEM,
        action="payments.refund_notified",
        target_type="refund",
        target_id=refund_id,
        after={"order_id": payload.get("order_id"), "via": via, "reason": payload.get("reason")},
    )
    return True
