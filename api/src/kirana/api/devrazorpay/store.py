"""The fake Razorpay's in-memory account: orders, payments, refunds, customers, tokens, events.

Pure data and rules, no HTTP: `app.py` maps requests onto these methods and `RazorpayError`
onto Razorpay's error bodies. Past 400 lines on purpose: every entity's rules (what may be
captured, refunded, tokenised) and the events they emit are one account's state machine.
Amounts are integer paise, as Razorpay's are. Entities are plain dicts shaped like Razorpay's
JSON (empty `notes` is `[]`, as Razorpay returns it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    return f"{prefix}_" + "".join(secrets.choice(ALPHABET) for _ in range(14))


def notes_of(value: Any) -> Any:
    """Razorpay stores notes as a map, and answers an empty one as `[]`."""
    return dict(value) if isinstance(value, dict) and value else []


def sign(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class RazorpayError(Exception):
    """One of Razorpay's error answers. The SDK picks its exception from `code`, not status."""

    def __init__(
        self,
        description: str,
        *,
        status: int = 400,
        code: str = "BAD_REQUEST_ERROR",
        field: str | None = None,
        reason: str = "input_validation_failed",
        step: str = "payment_initiation",
    ) -> None:
        super().__init__(description)
        self.status, self.code, self.field = status, code, field
        self.description, self.reason, self.step = description, reason, step

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "description": self.description,
                "source": "business" if self.status < 500 else "internal",
                "step": self.step,
                "reason": self.reason,
                "metadata": {},
                "field": self.field,
            }
        }


def not_found(_: str = "id") -> RazorpayError:
    return RazorpayError("The id provided does not exist", field="id")


@dataclass
class Account:
    key_id: str
    key_secret: str
    webhook_secret: str
    account_id: str = field(default_factory=lambda: new_id("acc"))
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    refund_keys: dict[str, str] = field(default_factory=dict)  # X-Refund-Idempotency -> refund id
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # webhooks not yet sent
    # "processed": a refund is processed at once; "pending": it waits for `settle_refund`.
    refund_outcome: str = "processed"
    lock: threading.RLock = field(default_factory=threading.RLock)

    # -- orders -------------------------------------------------------------------------

    def create_order(self, data: dict[str, Any]) -> dict[str, Any]:
        amount = data.get("amount")
        if not isinstance(amount, int) or amount < 100:
            raise RazorpayError("The amount must be atleast INR 1.00", field="amount")
        currency = data.get("currency", "INR")
        if currency != "INR":
            raise RazorpayError("Currency is not supported", field="currency")
        receipt = data.get("receipt")
        if receipt is not None and len(str(receipt)) > 40:
            raise RazorpayError("receipt: the length must not be greater than 40.", field="receipt")
        order = {
            "id": new_id("order"),
            "entity": "order",
            "amount": amount,
            "amount_paid": 0,
            "amount_due": amount,
            "currency": currency,
            "receipt": receipt,
            "offer_id": None,
            "status": "created",
            "attempts": 0,
            "notes": notes_of(data.get("notes")),
            "created_at": int(time.time()),
        }
        with self.lock:
            self.orders[order["id"]] = order
        return order

    def order(self, order_id: str) -> dict[str, Any]:
        with self.lock:
            if order_id not in self.orders:
                raise not_found()
            return self.orders[order_id]

    def order_payments(self, order_id: str) -> dict[str, Any]:
        self.order(order_id)
        with self.lock:
            items = [p for p in self.payments.values() if p["order_id"] == order_id]
        return collection(items)

    # -- payments -----------------------------------------------------------------------

    def payment(self, payment_id: str) -> dict[str, Any]:
        with self.lock:
            if payment_id not in self.payments:
                raise not_found()
            return self.payments[payment_id]

    def list_payments(self, since: int, until: int, count: int = 10, skip: int = 0) -> dict[str, Any]:
        with self.lock:
            items = [p for p in self.payments.values() if since <= p["created_at"] <= until]
        return page(sorted(items, key=lambda p: p["created_at"], reverse=True), count, skip)

    def pay(
        self,
        order_id: str,
        *,
        method: str,
        outcome: str = "approved",
        vpa: str | None = None,
        amount: int | None = None,
        email: str = "customer@example.com",
        contact: str = "+919000000000",
        customer_id: str | None = None,
        token_id: str | None = None,
        save: bool = False,
    ) -> dict[str, Any]:
        """What a customer's Checkout does: attempt a payment for an order. An approved attempt
        is `authorized` (the merchant captures it); a declined one `failed`. Returns the payment."""
        with self.lock:
            order = self.order(order_id)
            order["attempts"] += 1
            order["status"] = "attempted"
            p = {
                "id": new_id("pay"),
                "entity": "payment",
                "amount": order["amount"] if amount is None else amount,
                "currency": order["currency"],
                "status": "created",
                "order_id": order_id,
                "invoice_id": None,
                "international": False,
                "method": method,
                "amount_refunded": 0,
                "refund_status": None,
                "captured": False,
                "description": None,
                "card_id": None,
                "card": None,
                "bank": None,
                "wallet": None,
                "vpa": None,
                "email": email,
                "contact": contact,
                "customer_id": customer_id,
                "token_id": token_id,
                "notes": notes_of(order["notes"]),
                "fee": None,
                "tax": None,
                "error_code": None,
                "error_description": None,
                "error_source": None,
                "error_step": None,
                "error_reason": None,
                "acquirer_data": {},
                "created_at": int(time.time()),
            }
            if method == "card":
                p["card_id"] = new_id("card")
                p["card"] = {
                    "id": p["card_id"],
                    "entity": "card",
                    "name": "Test Customer",
                    "last4": "1111",
                    "network": "Visa",
                    "type": "credit",
                    "issuer": None,
                    "international": False,
                    "emi": False,
                }
            elif method == "upi":
                p["vpa"] = vpa or "success@razorpay"
                p["upi"] = {"vpa": p["vpa"], "flow": "collect" if vpa else "intent"}
            self.payments[p["id"]] = p
            if outcome == "approved":
                p["status"] = "authorized"
                self._event("payment.authorized", payment=p)
                if save and customer_id and method in ("card", "upi"):
                    self._save_token(p, customer_id)
            else:
                p.update(
                    status="failed",
                    error_code="BAD_REQUEST_ERROR",
                    error_description="Payment was declined by the customer's bank or app",
                    error_source="customer" if method == "upi" else "bank",
                    error_step="payment_authorization",
                    error_reason="payment_declined" if outcome == "declined" else outcome,
                )
                self._event("payment.failed", payment=p)
            return p

    def capture(self, payment_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            p = self.payment(payment_id)
            if p["status"] == "captured":
                raise RazorpayError("This payment has already been captured", field=None)
            if p["status"] != "authorized":
                raise RazorpayError(
                    "Only payments which have been authorized and not yet captured can be captured"
                )
            if data.get("amount") != p["amount"]:
                raise RazorpayError("Capture amount must be equal to the amount authorized", field="amount")
            if data.get("currency", p["currency"]) != p["currency"]:
                raise RazorpayError("Currency should be same as the payment currency", field="currency")
            fee = max(1, p["amount"] * 2 // 100)  # 2% gateway fee, GST included
            p.update(status="captured", captured=True, fee=fee, tax=fee * 18 // 118)
            order = self.orders[p["order_id"]]
            order["amount_paid"] += p["amount"]
            order["amount_due"] = max(0, order["amount"] - order["amount_paid"])
            if order["amount_due"] == 0:
                order["status"] = "paid"
            self._event("payment.captured", payment=p)
            if order["status"] == "paid":
                self._event("order.paid", payment=p, order=order)
            return p

    # -- refunds ------------------------------------------------------------------------

    def refund(self, payment_id: str, data: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        with self.lock:
            if idempotency_key and idempotency_key in self.refund_keys:
                return self.refunds[self.refund_keys[idempotency_key]]
            p = self.payment(payment_id)
            if p["status"] != "captured":
                raise RazorpayError("The payment has not been captured yet, so it cannot be refunded")
            left = p["amount"] - p["amount_refunded"]
            amount = data.get("amount", left)
            if not isinstance(amount, int) or amount < 100:
                raise RazorpayError("The amount must be atleast INR 1.00", field="amount")
            if amount > left:
                raise RazorpayError(
                    "The refund amount provided is greater than amount captured", field="amount"
                )
            r = {
                "id": new_id("rfnd"),
                "entity": "refund",
                "amount": amount,
                "currency": p["currency"],
                "payment_id": payment_id,
                "notes": notes_of(data.get("notes")),
                "receipt": data.get("receipt"),
                "acquirer_data": {"arn": None},
                "created_at": int(time.time()),
                "batch_id": None,
                "status": "pending",
                "speed_processed": "normal",
                "speed_requested": data.get("speed", "normal"),
            }
            self.refunds[r["id"]] = r
            if idempotency_key:
                self.refund_keys[idempotency_key] = r["id"]
            p["amount_refunded"] += amount
            p["refund_status"] = "full" if p["amount_refunded"] == p["amount"] else "partial"
            if p["refund_status"] == "full":
                p["status"] = "refunded"
            self._event("refund.created", refund=r, payment=p)
            if self.refund_outcome == "processed":
                r["status"] = "processed"
                self._event("refund.processed", refund=r, payment=p)
            return r

    def settle_refund(self, refund_id: str, *, processed: bool) -> dict[str, Any]:
        """The bank's answer to a pending refund; a failed one gives the amount back."""
        with self.lock:
            r = self.refund_entity(refund_id)
            if r["status"] != "pending":
                raise RazorpayError("The refund is not pending")
            p = self.payments[r["payment_id"]]
            if processed:
                r["status"] = "processed"
                self._event("refund.processed", refund=r, payment=p)
            else:
                r["status"] = "failed"
                p["amount_refunded"] -= r["amount"]
                p["refund_status"] = "partial" if p["amount_refunded"] else None
                p["status"] = "captured"
                self._event("refund.failed", refund=r, payment=p)
            return r

    def payment_refunds(self, payment_id: str) -> dict[str, Any]:
        self.payment(payment_id)
        with self.lock:
            return collection([r for r in self.refunds.values() if r["payment_id"] == payment_id])

    def list_refunds(self, since: int, until: int, count: int = 10, skip: int = 0) -> dict[str, Any]:
        with self.lock:
            items = [r for r in self.refunds.values() if since <= r["created_at"] <= until]
        return page(sorted(items, key=lambda r: r["created_at"], reverse=True), count, skip)

    def refund_entity(self, refund_id: str) -> dict[str, Any]:
        with self.lock:
            if refund_id not in self.refunds:
                raise not_found()
            return self.refunds[refund_id]

    # -- customers and tokens -----------------------------------------------------------

    def create_customer(self, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            email, contact = data.get("email"), data.get("contact")
            for c in self.customers.values():
                if c["email"] == email and c["contact"] == contact:
                    if str(data.get("fail_existing", "1")) == "0":
                        return c
                    raise RazorpayError("Customer already exists for the merchant")
            c = {
                "id": new_id("cust"),
                "entity": "customer",
                "name": data.get("name"),
                "email": email,
                "contact": contact,
                "gstin": data.get("gstin"),
                "notes": notes_of(data.get("notes")),
                "created_at": int(time.time()),
            }
            self.customers[c["id"]] = c
            return c

    def customer(self, customer_id: str) -> dict[str, Any]:
        with self.lock:
            if customer_id not in self.customers:
                raise not_found()
            return self.customers[customer_id]

    def _save_token(self, p: dict[str, Any], customer_id: str) -> None:
        t: dict[str, Any] = {
            "id": new_id("token"),
            "entity": "token",
            "token": "".join(secrets.choice(ALPHABET) for _ in range(14)),
            "bank": None,
            "wallet": None,
            "method": p["method"],
            "recurring": False,
            "used_at": int(time.time()),
            "created_at": int(time.time()),
            "expired_at": int(time.time()) + 4 * 365 * 86400,
            "customer_id": customer_id,
        }
        if p["method"] == "card":
            t["card"] = {k: p["card"][k] for k in ("last4", "network", "type", "issuer", "international")}
        else:
            user, _, host = p["vpa"].partition("@")
            t["vpa"] = {"username": user, "handle": host, "name": None}
        self.tokens[t["id"]] = t
        p["token_id"] = t["id"]

    def customer_tokens(self, customer_id: str) -> dict[str, Any]:
        self.customer(customer_id)
        with self.lock:
            items = [
                {k: v for k, v in t.items() if k != "customer_id"}
                for t in self.tokens.values()
                if t["customer_id"] == customer_id
            ]
        return collection(items)

    def delete_token(self, customer_id: str, token_id: str) -> dict[str, Any]:
        with self.lock:
            t = self.tokens.get(token_id)
            if t is None or t["customer_id"] != customer_id:
                raise not_found()
            del self.tokens[token_id]
            return {"deleted": True}

    # -- UPI ----------------------------------------------------------------------------

    @staticmethod
    def validate_vpa(vpa: str) -> dict[str, Any]:
        user, at, handle = vpa.partition("@")
        if not at or not user or not handle:
            raise RazorpayError("Invalid VPA. Please enter a valid Virtual Payment Address", field="vpa")
        valid = not user.startswith("invalid")
        return {"vpa": vpa, "success": valid, "customer_name": "Test Customer" if valid else None}

    def create_upi(self, data: dict[str, Any]) -> dict[str, Any]:
        """`payment.createUpi` (S2S): intent answers a `upi://pay` link; collect sends the
        request to the VPA (approved unless the VPA's user part starts with `decline`)."""
        order_id = str(data.get("order_id", ""))
        order = self.order(order_id)
        if data.get("amount") != order["amount"]:
            raise RazorpayError("Amount does not match the order amount", field="amount")
        upi = data.get("upi") or {}
        flow = upi.get("flow", "intent")
        if flow == "collect":
            vpa = str(upi.get("vpa", ""))
            if not self.validate_vpa(vpa)["success"]:
                raise RazorpayError("Invalid VPA", field="vpa", reason="invalid_vpa")
            outcome = "declined" if vpa.startswith("decline") else "approved"
            p = self.pay(order_id, method="upi", outcome=outcome, vpa=vpa)
            return {"razorpay_payment_id": p["id"]}
        with self.lock:
            p = self.pay(order_id, method="upi", outcome="pending")
            p.update(
                status="created",
                error_code=None,
                error_description=None,
                error_source=None,
                error_step=None,
                error_reason=None,
            )
            self.events = [e for e in self.events if e["payload"]["payment"]["entity"]["id"] != p["id"]]
        link = (
            f"upi://pay?pa=kirana@razorpay&pn=Kirana&tr={p['id']}&am={order['amount'] / 100:.2f}"
            f"&cu={order['currency']}&tn={order['receipt'] or order_id}"
        )
        return {"razorpay_payment_id": p["id"], "link": link}

    def complete_intent(self, payment_id: str, *, approved: bool) -> dict[str, Any]:
        """The customer's UPI app answered the intent."""
        with self.lock:
            p = self.payment(payment_id)
            if p["status"] != "created":
                raise RazorpayError("The payment is not awaiting the customer")
            if approved:
                p["status"] = "authorized"
                self._event("payment.authorized", payment=p)
            else:
                p.update(
                    status="failed",
                    error_code="BAD_REQUEST_ERROR",
                    error_description="Payment was declined by the customer",
                    error_source="customer",
                    error_step="payment_authorization",
                    error_reason="payment_declined",
                )
                self._event("payment.failed", payment=p)
            return p

    # -- webhooks -----------------------------------------------------------------------

    def _event(self, name: str, **entities: dict[str, Any]) -> None:
        payload = {k: {"entity": json.loads(json.dumps(v))} for k, v in entities.items()}
        self.events.append(
            {
                "entity": "event",
                "account_id": self.account_id,
                "event": name,
                "contains": list(entities),
                "payload": payload,
                "created_at": int(time.time()),
                "_id": new_id("evt"),  # sent as X-Razorpay-Event-Id, not in the body
            }
        )

    def take_events(self) -> list[dict[str, Any]]:
        with self.lock:
            out, self.events = self.events, []
            return out

    def checkout_signature(self, order_id: str, payment_id: str) -> str:
        """What Checkout hands the client after a successful payment."""
        return sign(self.key_secret, f"{order_id}|{payment_id}")


def collection(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"entity": "collection", "count": len(items), "items": items}


def page(items: list[dict[str, Any]], count: int, skip: int) -> dict[str, Any]:
    """One page of a list, as Razorpay pages: `count` items (at most 100) after `skip`."""
    if not 1 <= count <= 100:
        raise RazorpayError("count must be between 1 and 100", field="count")
    if skip < 0:
        raise RazorpayError("skip must be at least 0", field="skip")
    return collection(items[skip : skip + count])
