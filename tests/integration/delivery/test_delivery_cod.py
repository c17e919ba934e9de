"""Cash on delivery at the door: the agent's proof of delivery records the cash taken, through
payments' own flow, in the same transaction; a missing or wrong amount delivers nothing, and
cash is refused for an order that was paid before."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.integration.delivery.helpers import call, packed_order
from tests.integration.realtime.helpers import env, make_accounts
from tests.integration.servers import start_server


@pytest.fixture
def server(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[str]:
    proc, base = start_server(env(database_url, redis_url, tmp_path), app_factory="kirana.api.asgi:factory")
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _q(database_url: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, args).fetchall()


def _under_way(base: str, database_url: str, order: object, customer_token: str) -> tuple[str, str, str]:
    [agent] = make_accounts(database_url, base, 1, role="delivery_agent", scopes=["store:blr-1"])
    [manager] = make_accounts(database_url, base, 1, role="store_manager", scopes=["store:blr-1"])
    assign = {"agent_id": str(agent.user_id)}
    r = call(base, manager.token, "POST", f"/v1/staff/orders/{order}/delivery", assign)
    assert r.status_code == 201, r.text
    delivery = r.json()["id"]
    assert call(base, agent.token, "POST", f"/v1/deliveries/{delivery}/start").status_code == 200
    code = call(base, customer_token, "GET", f"/v1/orders/{order}/delivery").json()["code"]
    return agent.token, delivery, code


async def test_the_agent_records_the_cash_with_the_code(server: str, database_url: str) -> None:
    [alice] = make_accounts(database_url, server, 1)
    order = packed_order(database_url, alice.user_id, cod_paise=42_500)
    agent, delivery, code = _under_way(server, database_url, order, alice.token)
    deliver = f"/v1/deliveries/{delivery}/deliver"

    r = call(server, agent, "POST", deliver, {"code": code})
    assert r.status_code == 422 and r.json()["field"] == "cash_paise", r.text
    assert r.json()["amount_paise"] == 42_500
    r = call(server, agent, "POST", deliver, {"code": code, "cash_paise": 40_000})
    assert r.status_code == 422 and r.json()["type"].endswith("/cod-amount-mismatch"), r.text
    # Nothing was delivered by either: the order is still on its way, no cash in the ledger.
    assert call(server, alice.token, "GET", f"/v1/orders/{order}").json()["status"] == "out_for_delivery"
    assert _q(database_url, "SELECT count(*) FROM payment_ledger WHERE order_id = %s", order) == [(0,)]

    r = call(server, agent, "POST", deliver, {"code": code, "cash_paise": 42_500})
    assert r.status_code == 200 and r.json()["status"] == "delivered", r.text
    assert call(server, alice.token, "GET", f"/v1/orders/{order}").json()["status"] == "delivered"
    assert _q(database_url, "SELECT kind, amount_paise FROM payment_ledger WHERE order_id = %s", order) == [
        ("cod_collected", 42_500)
    ]
    collected = "SELECT collected_at IS NOT NULL FROM payment_cod WHERE order_id = %s"
    assert _q(database_url, collected, order) == [(True,)]
    assert _q(
        database_url,
        "SELECT count(*) FROM audit_log WHERE action = 'payments.cod_collected' AND target_id = %s",
        str(order),
    ) == [(1,)]


async def test_cash_is_refused_for_an_order_paid_before(server: str, database_url: str) -> None:
    [alice] = make_accounts(database_url, server, 1)
    order = packed_order(database_url, alice.user_id)
    agent, delivery, code = _under_way(server, database_url, order, alice.token)
    deliver = f"/v1/deliveries/{delivery}/deliver"
    r = call(server, agent, "POST", deliver, {"code": code, "cash_paise": 10_000})
    assert r.status_code == 422 and r.json()["field"] == "cash_paise", r.text
    r = call(server, agent, "POST", deliver, {"code": code})
    assert r.status_code == 200 and r.json()["status"] == "delivered", r.text
