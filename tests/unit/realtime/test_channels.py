"""Pure real-time decisions: who may follow a channel, where an event goes, what a client missed."""

from __future__ import annotations

import uuid

import pytest

from kirana.api.access.principal import Principal
from kirana.api.realtime import broker, channels

ME = uuid.UUID("00000000-0000-0000-0000-00000000000a")
OTHER = uuid.UUID("00000000-0000-0000-0000-00000000000b")
CUSTOMER = Principal(user_id=ME, permissions=frozenset({"orders:create"}))
SUPPORT_BLR = Principal(
    user_id=OTHER, permissions=frozenset({"orders:read_all"}), scopes=frozenset({"store:blr-1"})
)
OWNER = Principal(user_id=OTHER, permissions=frozenset({"*:*"}))


@pytest.mark.parametrize(
    ("principal", "channel", "refused"),
    [
        (CUSTOMER, f"user:{ME}:orders", None),
        (CUSTOMER, f"user:{OTHER}:orders", "another customer"),
        (CUSTOMER, "store:blr-1:orders", "orders:read_all"),
        (SUPPORT_BLR, "store:blr-1:orders", None),
        (SUPPORT_BLR, "store:del-2:orders", "scopes"),
        (OWNER, "store:del-2:orders", None),
        (OWNER, f"user:{ME}:orders", "another customer"),
        (CUSTOMER, "user:*:orders", "unknown channel"),
        (CUSTOMER, "kirana:rt:fanout", "unknown channel"),
        (CUSTOMER, f"delivery:{ME}", channels.LOOKUP),  # the hub asks the delivery authorizer
        (CUSTOMER, "delivery:not-an-order", "unknown channel"),
    ],
)
def test_may_subscribe(principal: Principal, channel: str, refused: str | None) -> None:
    reason = channels.may_subscribe(principal, channel)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


@pytest.mark.parametrize(
    ("topic", "payload", "expected"),
    [
        (
            "order.status_changed",
            {"user_id": str(ME), "store_code": "blr-1"},
            ("order.status", [f"user:{ME}:orders", "store:blr-1:orders"]),
        ),
        (
            "payment.succeeded",
            {"user_id": str(ME), "store_code": "blr-1"},
            ("payment.result", [f"user:{ME}:orders"]),
        ),
        ("order.status_changed", {"user_id": "x:y", "store_code": "BAD CODE"}, ("order.status", [])),
        ("user.password_reset", {"user_id": str(ME)}, ("", [])),
        (
            "delivery.position",
            {"user_id": str(ME), "store_code": "blr-1", "order_id": str(OTHER)},
            ("delivery.position", [f"delivery:{OTHER}"]),
        ),
        (
            "delivery.status_changed",
            {"user_id": str(ME), "store_code": "blr-1", "order_id": str(OTHER)},
            ("delivery.status", [f"user:{ME}:orders", "store:blr-1:orders", f"delivery:{OTHER}"]),
        ),
        (
            "order.eta",
            {"user_id": str(ME), "store_code": "blr-1", "order_id": str(OTHER)},
            ("order.eta", [f"user:{ME}:orders", f"delivery:{OTHER}"]),
        ),
        ("delivery.position", {"order_id": "../x"}, ("delivery.position", [])),
    ],
)
def test_route(topic: str, payload: dict[str, str], expected: tuple[str, list[str]]) -> None:
    assert channels.route(topic, payload) == expected


SNAP = broker.Snapshot(epoch="e1", seq=10, history=[(s, f"m{s}") for s in range(6, 11)])


@pytest.mark.parametrize(
    ("epoch", "since", "expected"),
    [
        ("e1", 10, []),
        ("e1", 7, ["m8", "m9", "m10"]),
        ("e1", 5, ["m6", "m7", "m8", "m9", "m10"]),
        ("e1", 4, None),  # message 5 is gone
        ("e0", 9, None),  # another epoch: the history was lost
        ("e1", 11, None),  # ahead of the channel: numbering restarted
    ],
)
def test_missed(epoch: str, since: int, expected: list[str] | None) -> None:
    assert broker.missed(SNAP, epoch=epoch, since=since) == expected


def test_missed_with_an_empty_history_after_expiry() -> None:
    empty = broker.Snapshot(epoch="e1", seq=10, history=[])
    assert broker.missed(empty, epoch="e1", since=10) == []
    assert broker.missed(empty, epoch="e1", since=9) is None
