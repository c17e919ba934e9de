"""Delivery tracking end to end: two real API processes on one PostgreSQL and one Redis, agents,
staff and customers signed in through the real login, positions over REST, events through the
outbox and the real relay to `websockets` clients on `delivery:<order>` and the customer's
orders channel."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kirana.api.db.engine import Database
from kirana.api.delivery import scheduled
from kirana.api.delivery.models import DeliveryPosition
from tests.integration.delivery.helpers import BLR, call, packed_order
from tests.integration.realtime.helpers import env, frame, make_accounts, open_socket, relay_all, subscribe
from tests.integration.servers import start_server

Servers = tuple[list[subprocess.Popen[bytes]], list[str]]
INTERVAL_S = 0.3


@pytest.fixture
def two_servers(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Servers]:
    e = env(database_url, redis_url, tmp_path, KIRANA_DELIVERY_POSITION_INTERVAL_S=str(INTERVAL_S))
    started = [start_server(e, app_factory="kirana.api.asgi:factory") for _ in range(2)]
    try:
        yield [p for p, _ in started], [b for _, b in started]
    finally:
        for proc, _ in started:
            proc.terminate()
        for proc, _ in started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _point(north_m: float) -> dict[str, float]:
    """A fix `north_m` metres north of the drop point."""
    return {"lat": BLR[0] + north_m / 111_195, "lng": BLR[1]}


async def test_an_order_is_followed_from_assignment_to_proof_of_delivery(
    two_servers: Servers, database_url: str, redis_url: str
) -> None:
    _, (a, b) = two_servers
    alice, bob = make_accounts(database_url, a, 2)
    [agent] = make_accounts(database_url, a, 1, role="delivery_agent", scopes=["store:blr-1"])
    [elsewhere] = make_accounts(database_url, a, 1, role="delivery_agent", scopes=["store:del-2"])
    [manager] = make_accounts(database_url, a, 1, role="store_manager", scopes=["store:blr-1"])
    order = packed_order(database_url, alice.user_id)
    path = f"/v1/staff/orders/{order}/delivery"
    dest = {"lat": BLR[0], "lng": BLR[1]}

    # Assignment: staff only, to an agent of the order's store.
    assert call(a, agent.token, "POST", path, {"agent_id": str(agent.user_id)}).status_code == 403
    r = call(a, manager.token, "POST", path, {"agent_id": str(bob.user_id)})
    assert r.status_code == 422 and "not a delivery agent" in r.json()["detail"]
    r = call(a, manager.token, "POST", path, {"agent_id": str(elsewhere.user_id)})
    assert r.status_code == 422 and "store" in r.json()["detail"]
    r = call(a, manager.token, "POST", path, {"agent_id": str(agent.user_id), "destination": dest})
    assert r.status_code == 201, r.text
    delivery = r.json()
    assert delivery["status"] == "assigned" and delivery["code"] is None  # staff never see it
    assert delivery["channel"] == f"delivery:{order}"
    mine = call(b, alice.token, "GET", f"/v1/orders/{order}/delivery").json()
    code = mine["code"]
    assert code and len(code) == 4 and mine["agent_id"] == str(agent.user_id)
    assert call(b, agent.token, "GET", f"/v1/orders/{order}/delivery").json()["code"] is None
    assert call(b, bob.token, "GET", f"/v1/orders/{order}/delivery").status_code == 404
    listed = call(b, agent.token, "GET", "/v1/deliveries").json()["items"]
    assert [d["order_id"] for d in listed] == [str(order)]

    channel = f"delivery:{order}"
    async with (
        await open_socket(a, alice.token) as customer,
        await open_socket(b, alice.token) as customer_orders,
        await open_socket(b, agent.token) as agent_ws,
        await open_socket(a, manager.token) as staff_ws,
        await open_socket(b, bob.token) as stranger,
        await open_socket(a, elsewhere.token) as other_agent,
    ):
        for ws in (customer, agent_ws, staff_ws):
            assert (await subscribe(ws, channel))["type"] == "subscribed"
        assert (await subscribe(customer_orders, alice.channel))["type"] == "subscribed"
        for ws in (stranger, other_agent):
            refused = await subscribe(ws, channel)
            assert refused["type"] == "error" and refused["code"] == "forbidden", refused
        bad = await subscribe(stranger, "delivery:not-an-order")
        assert bad["code"] == "forbidden" and "unknown channel" in bad["detail"]

        # The agent sets off and sends positions.
        base = f"/v1/deliveries/{delivery['id']}"
        assert call(b, bob.token, "POST", base + "/start").status_code == 403
        assert call(b, elsewhere.token, "POST", base + "/start").status_code == 404
        r = call(b, agent.token, "POST", base + "/start")
        assert r.status_code == 200 and r.json()["status"] == "en_route"
        assert call(a, alice.token, "GET", f"/v1/orders/{order}").json()["status"] == "out_for_delivery"
        assert call(a, agent.token, "POST", base + "/positions", {"lat": 91, "lng": 0}).status_code == 422
        assert call(a, agent.token, "POST", base + "/positions", {"lat": "NaN", "lng": 0}).status_code == 422
        r = call(a, agent.token, "POST", base + "/positions", _point(3000))
        assert r.status_code == 201, r.text
        first_eta = datetime.fromisoformat(r.json()["eta_at"])
        assert timedelta(minutes=5) < first_eta - datetime.now(UTC) < timedelta(minutes=25)
        r = call(b, agent.token, "POST", base + "/positions", _point(2990))  # the other replica
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        await asyncio.sleep(INTERVAL_S + 0.1)
        r = call(b, agent.token, "POST", base + "/positions", _point(500_000))  # 500 km in a second
        assert r.status_code == 422 and "implausibly" in r.json()["detail"]
        await asyncio.sleep(INTERVAL_S + 0.1)
        assert call(b, agent.token, "POST", base + "/positions", _point(2980)).status_code == 201

        await relay_all(database_url, redis_url)
        for ws in (customer, agent_ws, staff_ws):
            got = [await frame(ws) for _ in range(5)]
            assert [m["seq"] for m in got] == [1, 2, 3, 4, 5]
            kinds = [m["type"] for m in got]
            assert kinds == [
                "delivery.status",
                "delivery.status",
                "order.eta",
                "delivery.position",
                "delivery.position",
            ]
            assert [m["data"]["status"] for m in got[:2]] == ["assigned", "en_route"]
            assert [round(m["data"]["lat"], 4) for m in got[3:]] == [
                round(_point(3000)["lat"], 4),
                round(_point(2980)["lat"], 4),
            ]
            assert all(code not in json.dumps(m["data"]) for m in got)  # the code is never pushed
        orders_feed = [await frame(customer_orders) for _ in range(5)]
        assert [m["type"] for m in orders_feed] == [
            "delivery.status",
            "order.status",
            "order.status",
            "delivery.status",
            "order.eta",
        ]
        assert orders_feed[-1]["data"]["eta_s"] > 300

        # Proof of delivery: the customer's code, once.
        r = call(a, agent.token, "POST", base + "/deliver", {"code": "0000" if code != "0000" else "1111"})
        assert r.status_code == 422 and r.json()["detail"] == "wrong delivery code"
        assert call(a, elsewhere.token, "POST", base + "/deliver", {"code": code}).status_code == 404
        r = call(a, agent.token, "POST", base + "/deliver", {"code": code})
        assert r.status_code == 200 and r.json()["status"] == "delivered"
        assert call(b, agent.token, "POST", base + "/deliver", {"code": code}).status_code == 409
        assert call(b, alice.token, "GET", f"/v1/orders/{order}").json()["status"] == "delivered"
        assert call(b, alice.token, "GET", f"/v1/orders/{order}/delivery").json()["code"] is None
        assert call(b, agent.token, "GET", "/v1/deliveries").json()["items"] == []
        await relay_all(database_url, redis_url)
        done = await frame(customer)
        assert (
            done["type"] == "delivery.status" and done["data"]["status"] == "delivered" and done["seq"] == 6
        )


async def test_reassignment_failed_attempts_and_the_code_lockout(
    two_servers: Servers, database_url: str, redis_url: str
) -> None:
    _, (a, b) = two_servers
    [alice] = make_accounts(database_url, a, 1)
    first, second = make_accounts(database_url, a, 2, role="delivery_agent", scopes=["store:blr-1"])
    [manager] = make_accounts(database_url, a, 1, role="store_manager", scopes=["store:blr-1"])
    order = packed_order(database_url, alice.user_id)
    path = f"/v1/staff/orders/{order}/delivery"
    channel = f"delivery:{order}"
    one = call(a, manager.token, "POST", path, {"agent_id": str(first.user_id)}).json()
    assert call(a, manager.token, "POST", path, {"agent_id": str(first.user_id)}).status_code == 409
    async with await open_socket(b, first.token) as ws:
        assert (await subscribe(ws, channel))["type"] == "subscribed"
        two = call(b, manager.token, "POST", path, {"agent_id": str(second.user_id)}).json()
        assert two["status"] == "assigned" and two["id"] != one["id"]
        await relay_all(database_url, redis_url)
        # The socket of the agent who lost the order is told, then taken off the channel.
        seen = []
        while (msg := await frame(ws))["type"] != "unsubscribed":
            seen.append(msg)
        assert msg["channel"] == channel and seen
        assert all(m["type"] == "delivery.status" for m in seen)
        assert [m["seq"] for m in seen] == list(range(1, len(seen) + 1))
        assert (await subscribe(ws, channel))["code"] == "forbidden"
    r = call(a, first.token, "POST", f"/v1/deliveries/{one['id']}/start")
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]
    # A failed attempt, then another agent gets the order again.
    r = call(b, second.token, "POST", f"/v1/deliveries/{two['id']}/fail", {"reason": "customer_unavailable"})
    assert r.status_code == 200 and r.json()["failure_reason"] == "customer_unavailable"
    three = call(a, manager.token, "POST", path, {"agent_id": str(first.user_id)}).json()
    assert call(a, first.token, "POST", f"/v1/deliveries/{three['id']}/start").status_code == 200
    code = call(a, alice.token, "GET", f"/v1/orders/{order}/delivery").json()["code"]
    wrong = "0000" if code != "0000" else "1111"
    for _ in range(5):
        r = call(a, first.token, "POST", f"/v1/deliveries/{three['id']}/deliver", {"code": wrong})
        assert r.status_code == 422
    assert r.json()["locked_for_s"] >= 60
    # Locked now, on every replica, even for the right code.
    r = call(b, first.token, "POST", f"/v1/deliveries/{three['id']}/deliver", {"code": code})
    assert r.status_code == 429 and r.json()["locked"] is True
    assert call(a, alice.token, "GET", f"/v1/orders/{order}").json()["status"] == "out_for_delivery"


async def test_old_positions_are_pruned_and_recent_ones_kept(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    proc, base = start_server(env(database_url, redis_url, tmp_path), app_factory="kirana.api.asgi:factory")
    try:
        [alice] = make_accounts(database_url, base, 1)
        [agent] = make_accounts(database_url, base, 1, role="delivery_agent")
        [manager] = make_accounts(database_url, base, 1, role="store_manager")
        order = packed_order(database_url, alice.user_id)
        d = call(
            base,
            manager.token,
            "POST",
            f"/v1/staff/orders/{order}/delivery",
            {"agent_id": str(agent.user_id)},
        )
        delivery_id = d.json()["id"]
        assert (
            call(
                base, agent.token, "POST", f"/v1/deliveries/{delivery_id}/positions", _point(100)
            ).status_code
            == 201
        )
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    db = Database(database_url)
    try:
        async with db.session() as s:
            now = datetime.now(UTC)
            for hours in (30, 26, 1):
                s.add(
                    DeliveryPosition(
                        delivery_id=delivery_id,
                        lat=BLR[0],
                        lng=BLR[1],
                        recorded_at=now - timedelta(hours=hours),
                        received_at=now - timedelta(hours=hours),
                    )
                )
        assert await scheduled.prune_positions(db, retention_s=24 * 3600, batch=1) == 2
        assert await scheduled.prune_positions(db, retention_s=24 * 3600) == 0
        async with db.session() as s:
            from sqlalchemy import func, select

            assert await s.scalar(select(func.count()).select_from(DeliveryPosition)) == 2
    finally:
        await db.dispose()
