"""The reconciler repairs lost webhooks; `kirana payments verify-ledger` and `reconcile --date`
report differences (exit 1) and pass when the ledger and Razorpay agree."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from fastapi import FastAPI
from httpx import AsyncClient
from typer.testing import CliRunner

from kirana.api.cli import app as cli
from kirana.api.devrazorpay.server import FakeServer
from kirana.api.payments import scheduled as flows
from kirana.api.settings import Settings
from tests.integration.commerce.conftest import Catalog, customer
from tests.integration.payments.conftest import place, start
from tests.integration.payments.test_payments_checkout import q


async def run_cli(settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        "KIRANA_DATABASE_URL": settings.database_url,
        "KIRANA_RAZORPAY_KEY_ID": settings.razorpay_key_id,
        "KIRANA_RAZORPAY_KEY_SECRET": settings.razorpay_key_secret.get_secret_value(),
        "KIRANA_RAZORPAY_BASE_URL": settings.razorpay_base_url,
        "KIRANA_DATA_DIR": str(settings.data_dir),
    }
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


async def test_a_lost_webhook_never_loses_an_order(
    client: AsyncClient,
    app: FastAPI,
    login,
    shop: Catalog,
    fake: FakeServer,
    settings: Settings,
    database_url: str,
) -> None:
    await shop.product(sku="POHA-1KG", price=8_000, stock=5)
    await login(customer())
    order = await place(client, "POHA-1KG")
    co = await start(client, order["id"])
    fake.account.pay(co["razorpay_order_id"], method="upi")  # the app closed before verify
    fake.fake.webhooks.drop_rate = 1.0
    assert fake.fake.deliveries() == []  # and the webhook was lost
    today = datetime.now(UTC).date().isoformat()

    code, out = await run_cli(settings, "payments", "reconcile", "--date", today, "--json")
    assert code == 1 and "authorized at Razorpay, unknown to the shop" in out

    assert await flows.reconcile_pending(app.state.db, app.state.payments_gateway) == 1
    assert q(database_url, "SELECT status FROM orders") == [("paid",)]
    assert await flows.reconcile_pending(app.state.db, app.state.payments_gateway) == 0

    code, out = await run_cli(settings, "payments", "reconcile", "--date", today, "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out = await run_cli(settings, "payments", "verify-ledger")
    assert code == 0, out


async def test_verify_ledger_finds_an_order_paid_without_money(
    client: AsyncClient, login, shop: Catalog, settings: Settings, database_url: str
) -> None:
    await shop.product(sku="MILK-1L", price=6_000, stock=5)
    await login(customer())
    order = await place(client, "MILK-1L")
    q(database_url, "UPDATE orders SET status = 'paid', paid_at = now() WHERE id = %s", order["id"])
    code, out = await run_cli(settings, "payments", "verify-ledger", "--json")
    assert code == 1
    [problem] = json.loads(out)["differences"]
    assert problem["order_id"] == order["id"] and "nets 0" in problem["problem"]


async def test_razorpay_down_postpones_the_reconciler_without_writing(
    client: AsyncClient, app: FastAPI, login, shop: Catalog, fake: FakeServer, database_url: str
) -> None:
    await shop.product(sku="CURD", price=4_000, stock=5)
    await login(customer())
    co = await start(client, (await place(client, "CURD"))["id"])
    fake.account.pay(co["razorpay_order_id"], method="card")
    fake.fake.faults.fail_count = -1
    assert await flows.reconcile_pending(app.state.db, app.state.payments_gateway) == 0
    assert q(database_url, "SELECT count(*) FROM payments") == [(0,)]
    fake.fake.faults.fail_count = 0
    assert await flows.reconcile_pending(app.state.db, app.state.payments_gateway) == 1


async def test_reconcile_date_reads_every_page_of_payments_and_refunds(
    app: FastAPI, settings: Settings, fake: FakeServer
) -> None:
    """Razorpay answers lists 100 at most a page: a day with more refunds than that is read whole."""
    many = 130
    for i in range(many):  # made in Razorpay's dashboard: none of it is in the shop's ledger
        order = fake.account.create_order({"amount": 10_000, "currency": "INR", "receipt": f"walk-in-{i}"})
        p = fake.account.pay(order["id"], method="card")
        fake.account.capture(p["id"], {"amount": 10_000})
        fake.account.refund(p["id"], {"amount": 5_000}, None)
    fake.fake.deliveries()  # their webhooks are lost
    assert len(app.state.payments_gateway.client.refund.all({"count": 100})["items"]) == 100  # one page
    day = datetime.now(UTC).date().isoformat()
    code, out = await run_cli(settings, "payments", "reconcile", "--date", day, "--json")
    assert code == 1
    found = json.loads(out)["differences"]
    assert sum(d["difference"] == "refund not in the ledger" for d in found) == many
    assert sum(d["difference"] == "captured at Razorpay, not in the ledger" for d in found) == many
