"""`orders.unpaid`: what one customer may hold unpaid, decided without a database."""

from __future__ import annotations

import uuid

import pytest

from kirana.api.orders import unpaid

CAPS = unpaid.Caps(orders=2, units=30, units_per_item=20)
USER = uuid.uuid4()


def _held(*orders: dict[str, int]) -> unpaid.Held:
    rows = [
        {"user_id": str(USER), "order_id": str(order_id), "sku": sku, "quantity": qty}
        for order_id, lines in ((uuid.uuid4(), o) for o in orders)
        for sku, qty in lines.items()
    ]
    return unpaid.held_of(rows).get(USER, unpaid.Held())


@pytest.mark.parametrize(
    ("held", "wanted", "refused"),
    [
        ((), {"A": 20}, False),
        ((), {"A": 21}, True),  # one item
        (({"A": 15},), {"A": 5}, False),
        (({"A": 15},), {"A": 6}, True),  # the review: 50 then 26 of one product
        (({"A": 10},), {"B": 20}, False),
        (({"A": 10},), {"B": 15, "C": 6}, True),  # all items together
        (({"A": 1}, {"B": 1}), {"C": 1}, True),  # unpaid orders
    ],
)
def test_caps(held: tuple[dict[str, int], ...], wanted: dict[str, int], refused: bool) -> None:
    holding = _held(*held)
    if refused:
        with pytest.raises(unpaid.TooManyUnpaid):
            unpaid.check(holding, wanted, CAPS)
    else:
        unpaid.check(holding, wanted, CAPS)


def test_an_accepted_order_counts_for_the_next() -> None:
    holding = _held()
    unpaid.check(holding, {"A": 12}, CAPS)
    unpaid.take(holding, uuid.uuid4(), {"A": 12})
    with pytest.raises(unpaid.TooManyUnpaid):
        unpaid.check(holding, {"A": 9}, CAPS)
    assert holding.units == 12 and len(holding.orders) == 1


def test_a_cap_of_zero_is_off_and_all_off_reads_nothing() -> None:
    off = unpaid.Caps(orders=0, units=0, units_per_item=0)
    assert not off.any_on and off.orders_read is None
    unpaid.check(_held({"A": 900}, {"B": 900}, {"A": 900}), {"A": 900}, off)  # nothing refused
    only_orders = unpaid.Caps(orders=2, units=0, units_per_item=0)
    assert only_orders.any_on and only_orders.orders_read == 2
    unpaid.check(_held({"A": 900}), {"A": 900}, only_orders)
    with pytest.raises(unpaid.TooManyUnpaid):
        unpaid.check(_held({"A": 1}, {"A": 1}), {"A": 1}, only_orders)


@pytest.mark.parametrize(
    ("host", "known"),
    [
        ("49.36.10.20", "49.36.10.20"),
        ("2405:201:e00a::1", "2405:201:e00a::1"),
        ("127.0.0.1", None),  # loopback: an internal caller
        ("10.0.0.5", None),  # private: the proxy itself, its headers not trusted
        ("192.168.1.4", None),
        ("testclient", None),
        (None, None),
    ],
)
def test_only_a_global_address_is_a_known_client(host: str | None, known: str | None) -> None:
    assert unpaid.known_ip(host) == known


def test_the_per_address_cap_counts_orders_and_zero_is_off() -> None:
    rows = [{"client_ip": "49.36.10.20", "order_id": str(uuid.uuid4())} for _ in range(2)]
    held = unpaid.held_by_ip(rows)["49.36.10.20"]
    unpaid.check_ip(held, 3)
    unpaid.check_ip(held, 0)
    with pytest.raises(unpaid.TooManyUnpaid) as refused:
        unpaid.check_ip(held, 2)
    assert refused.value.extra["max_unpaid_orders_per_ip"] == 2


def test_locks_are_taken_in_one_order_whatever_the_order_asked() -> None:
    users = [uuid.uuid4() for _ in range(5)]
    ips = ["49.36.10.20", "49.36.10.21"]
    locks = unpaid.lock_keys(users, ips)
    assert locks == sorted(locks) == unpaid.lock_keys(list(reversed(users)), list(reversed(ips)))
    assert {c for c, _ in locks} == {unpaid.CUSTOMER_LOCK_CLASS, unpaid.IP_LOCK_CLASS}
    assert all(-(2**31) <= k < 2**31 for _, k in locks)
