"""Razorpay's webhooks as the load sends them: signed events about real payments of the run,
each delivered more than once (the same `X-Razorpay-Event-Id`) and in shuffled order.

The bodies have the shape Razorpay (and the fake, `kirana.api.devrazorpay`) sends: an `event`
envelope whose `payload.<entity>.entity` holds the payment or order as Razorpay's API returns
it; the signature is HMAC-SHA256 over the raw body with the webhook secret. Pure, so the unit
tests check the envelope, the signature and the duplicate bookkeeping without a run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

ACCOUNT_ID = "acc_kiranaload"


@dataclass(frozen=True)
class Delivery:
    event_id: str
    event: str
    body: bytes
    headers: dict[str, str]


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(event: str, **entities: dict[str, Any]) -> dict[str, Any]:
    return {
        "entity": "event",
        "account_id": ACCOUNT_ID,
        "event": event,
        "contains": list(entities),
        "payload": {name: {"entity": entity} for name, entity in entities.items()},
        "created_at": int(time.time()),
    }


def events_for(payment: dict[str, Any], order: dict[str, Any] | None) -> list[dict[str, Any]]:
    """What Razorpay sends about one captured payment: authorized, captured, and the order paid."""
    out = [envelope("payment.authorized", payment=payment), envelope("payment.captured", payment=payment)]
    if order is not None:
        out.append(envelope("order.paid", payment=payment, order=order))
    return out


def deliveries(
    events: list[dict[str, Any]], *, secret: str, copies: int, rng: random.Random
) -> list[Delivery]:
    """Each event signed once and delivered `copies` times, all of them shuffled."""
    out = []
    for ev in events:
        event_id = f"evt_load{uuid.uuid4().hex[:14]}"
        body = json.dumps(ev, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Razorpay-Signature": sign(secret, body),
            "X-Razorpay-Event-Id": event_id,
            "User-Agent": "Razorpay-Webhook/v1",
        }
        out += [Delivery(event_id, ev["event"], body, headers)] * max(1, copies)
    rng.shuffle(out)
    return out


@dataclass
class Ledger:
    """Which event ids the shop has acknowledged: the first delivery of an id must come back
    `accepted`, every later one `duplicate`."""

    seen: set[str] = field(default_factory=set)

    def judge(self, event_id: str, status: str) -> str | None:
        """None when the answer is right, else what is wrong with it."""
        first = event_id not in self.seen
        self.seen.add(event_id)
        want = "accepted" if first else "duplicate"
        return None if status == want else f"{'first' if first else 'repeated'} delivery answered {status!r}"
