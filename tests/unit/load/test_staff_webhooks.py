"""The load kit's staff and webhook users, their pure parts: which order staff move on, the
webhook envelope and signature, the duplicated and shuffled deliveries and their bookkeeping."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import sys
from typing import Any

from tests.load import staff, webhooks

PAYMENT = {"id": "pay_1", "entity": "payment", "order_id": "order_1", "amount": 5000, "status": "captured"}
ORDER = {"id": "order_1", "entity": "order", "amount": 5000, "status": "paid"}


def test_staff_move_the_order_furthest_along_and_leave_finished_ones() -> None:
    orders = [
        {"id": "a", "status": "paid"},
        {"id": "b", "status": "shipped"},
        {"id": "c", "status": "delivered"},
    ]
    assert staff.furthest(orders) == {"id": "b", "status": "shipped"}
    assert staff.NEXT["shipped"] == "out_for_delivery"
    assert staff.furthest([{"id": "c", "status": "delivered"}, {"id": "d", "status": "refunded"}]) is None


def test_each_captured_payment_makes_the_events_razorpay_sends() -> None:
    events = webhooks.events_for(PAYMENT, ORDER)
    assert [e["event"] for e in events] == ["payment.authorized", "payment.captured", "order.paid"]
    paid = events[2]
    assert paid["entity"] == "event" and paid["contains"] == ["payment", "order"]
    assert paid["payload"] == {"payment": {"entity": PAYMENT}, "order": {"entity": ORDER}}
    assert [e["event"] for e in webhooks.events_for(PAYMENT, None)][-1] == "payment.captured"


def test_deliveries_are_signed_over_the_raw_body_duplicated_and_shuffled() -> None:
    events = webhooks.events_for(PAYMENT, ORDER)
    got = webhooks.deliveries(events, secret="whsec", copies=2, rng=random.Random(7))
    assert len(got) == 6
    ids = [d.event_id for d in got]
    assert len(set(ids)) == 3 and all(ids.count(i) == 2 for i in ids)
    assert all(0 < len(i) <= 60 for i in ids)  # the shop refuses longer ids
    for d in got:
        assert d.headers["X-Razorpay-Event-Id"] == d.event_id
        want = hmac.new(b"whsec", d.body, hashlib.sha256).hexdigest()
        assert d.headers["X-Razorpay-Signature"] == want
        assert json.loads(d.body)["event"] == d.event
    orders = {
        tuple(d.event_id for d in webhooks.deliveries(events, secret="s", copies=2, rng=random.Random(s)))
        for s in range(20)
    }
    assert len(orders) > 1  # not always in the order Razorpay raised them


def test_the_ledger_wants_accepted_first_and_duplicate_after() -> None:
    ledger = webhooks.Ledger()
    assert ledger.judge("evt_a", "accepted") is None
    assert ledger.judge("evt_a", "duplicate") is None
    assert ledger.judge("evt_a", "accepted") == "repeated delivery answered 'accepted'"
    assert ledger.judge("evt_b", "duplicate") == "first delivery answered 'duplicate'"


def test_the_owner_phone_is_known_before_the_first_sign_in(monkeypatch: Any) -> None:
    """A second run against the same shop finds the owner with two-factor on: the sign-in code
    goes to the owner's phone, which the desk must know before it has signed in."""
    monkeypatch.delenv("KIRANA_LOAD_OWNER", raising=False)
    assert staff.owner_credentials() == ("owner@example.com", "kirana-owner-demo", "+919800000001")
    monkeypatch.setenv("KIRANA_LOAD_OWNER", "ops@shop.in")
    monkeypatch.setenv("KIRANA_LOAD_OWNER_PASSWORD", "pw")
    monkeypatch.setenv("KIRANA_LOAD_OWNER_PHONE", "+919811111111")
    assert staff.owner_credentials() == ("ops@shop.in", "pw", "+919811111111")
    monkeypatch.delenv("KIRANA_LOAD_OWNER_PHONE")
    monkeypatch.setenv("KIRANA_LOAD_OWNER", "+919822222222")
    assert staff.owner_credentials() == ("+919822222222", "pw", "+919822222222")


def test_staff_users_need_an_owner_to_grant_their_role(monkeypatch: Any) -> None:
    """In a load image (no shop code, so no demo owner) staff users are left out unless the
    owner's credentials are given; beside a `kirana run` the demo owner is there."""
    monkeypatch.delenv("KIRANA_LOAD_OWNER", raising=False)
    monkeypatch.delenv("KIRANA_LOAD_OWNER_PASSWORD", raising=False)
    assert staff.owner_known()
    monkeypatch.setitem(sys.modules, "kirana.api.accounts.seed", None)  # import fails as in the image
    assert not staff.owner_known()
    monkeypatch.setenv("KIRANA_LOAD_OWNER", "+919822222222")
    monkeypatch.setenv("KIRANA_LOAD_OWNER_PASSWORD", "pw")
    assert staff.owner_known()
