"""`kirana run` without Razorpay keys starts the fake Razorpay, and `kirana dev pay` pays an
order through it (Checkout, signature, signed webhooks, the worker) until the shop has it paid."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from kirana.api.db.engine import Database
from kirana.api.devstack import free_port
from kirana.api.orders import placement
from kirana.api.orders import schemas as os_
from tests.integration.test_run import _wait_ready


async def _an_order(db_url: str) -> uuid.UUID:
    with psycopg.connect(db_url) as conn:
        user_id = uuid.uuid4()
        conn.execute(
            "INSERT INTO users (id, email, password_hash) VALUES (%s, %s, '!')",
            (user_id, f"{user_id.hex}@test.invalid"),
        )
        [sku] = conn.execute(
            "SELECT sku FROM catalog_variants WHERE stock > 0 AND price_paise >= 100 ORDER BY sku LIMIT 1"
        ).fetchone() or ("",)
    db = Database(db_url, pool_size=1, max_overflow=0)
    try:
        wanted = placement.placement_of(
            os_.PlaceOrder(lines=[os_.OrderLineIn(sku=sku, quantity=1)]),
            user_id=user_id,
            policy=placement.Policy(),
        )
        async with db.session() as session:
            return (await placement.place_order(session, wanted)).id
    finally:
        await db.dispose()


@pytest.mark.xdist_group("run")
def test_kirana_run_starts_the_fake_and_dev_pay_pays_an_order(tmp_path: Path) -> None:
    data = tmp_path / "state"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIRANA_")}
    env |= {"KIRANA_DATA_DIR": str(data), "KIRANA_LOG_LEVEL": "WARNING", "KIRANA_SEED_CATALOG_PRODUCTS": "20"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kirana.api", "run", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
        found = json.loads((data / "devrazorpay.json").read_text())
        order_id = asyncio.run(_an_order(found["database_url"]))
        paid = subprocess.run(
            [sys.executable, "-m", "kirana.api", "dev", "pay", str(order_id), "--method", "upi"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert paid.returncode == 0, paid.stdout + paid.stderr
        assert f"order {order_id} paid" in paid.stdout
        with psycopg.connect(found["database_url"]) as conn:
            assert conn.execute("SELECT status FROM orders WHERE id = %s", (order_id,)).fetchone() == (
                "paid",
            )
            kinds = conn.execute(
                "SELECT kind FROM payment_ledger WHERE order_id = %s ORDER BY id", (order_id,)
            )
            assert [k for (k,) in kinds] == ["captured", "fee"]
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    assert "Razorpay (local fake" in output, output
