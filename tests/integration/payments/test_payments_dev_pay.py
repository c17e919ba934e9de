"""`kirana run` without Razorpay keys starts the fake Razorpay, and `kirana dev pay` pays an
order through it (Checkout, signature, signed webhooks, the worker) until the shop has it paid."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from kirana.api.db.engine import Database
from kirana.api.orders import placement
from kirana.api.orders import schemas as os_
from tests.localrun import kirana, running, scratch_dir


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
def test_kirana_run_starts_the_fake_and_dev_pay_pays_an_order() -> None:
    data = scratch_dir("dev-pay")
    with running(data, cleanup=data, env={"KIRANA_SEED_CATALOG_PRODUCTS": "20"}) as run:
        found = run.state()
        assert found["razorpay_base_url"].startswith("http://127.0.0.1:")
        order_id = asyncio.run(_an_order(found["database_url"]))
        # a second terminal: nothing configured, the fake and the database found through the record
        paid = kirana(
            "dev",
            "pay",
            str(order_id),
            "--method",
            "upi",
            cwd=data.parent,
            env={"KIRANA_DATA_DIR": str(data)},
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
    assert "Razorpay (local fake" in run.output, run.output
