"""`kirana loyalty verify|rebuild`, `kirana leaderboards check|rebuild` and `kirana achievements
backfill` as an operator runs them: exit 1 on a difference, 0 once mended, --json."""

from __future__ import annotations

import asyncio
import json

from httpx import AsyncClient
from sqlalchemy import text

from kirana.api.db.engine import Database
from tests.integration.commerce.conftest import Catalog, Login, customer
from tests.integration.test_cli import kirana

from .conftest import Worker, delivered_order


async def run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    done = await asyncio.to_thread(kirana, *args, env=env)
    return done.returncode, done.stdout + done.stderr


async def test_verify_rebuild_check_and_backfill_commands(
    client: AsyncClient,
    login: Login,
    shop: Catalog,
    db: Database,
    worker: Worker,
    database_url: str,
    redis_url: str,
) -> None:
    env = {"KIRANA_DATABASE_URL": database_url, "KIRANA_REDIS_URL": redis_url}
    await login(customer())
    await delivered_order(db, client, (await shop.product(price=105_000, stock=3)).variants[0].sku)
    await worker.pump()

    assert await run("loyalty", "verify", env=env) == (0, "every loyalty account matches its ledger\n")
    async with db.session() as s:
        await s.execute(text("UPDATE loyalty_accounts SET balance = 1"))
    code, out = await run("loyalty", "verify", "--json", env=env)
    assert code == 1 and json.loads(out)["differences"][0]["ledger_balance"] == 100
    assert (await run("loyalty", "rebuild", "--json", env=env)) == (0, '{"changed": 1}\n')
    assert (await run("loyalty", "verify", env=env))[0] == 0

    assert (await run("leaderboards", "check", env=env))[0] == 0
    await worker.redis.delete("kirana:lb:all:all")
    assert (await run("leaderboards", "check", env=env))[0] == 1
    assert (await run("leaderboards", "rebuild", env=env))[0] == 0
    assert (await run("leaderboards", "check", env=env))[0] == 0

    code, out = await run("achievements", "backfill", "first_order", "--json", env=env)
    assert code == 0 and json.loads(out) == {"rule": "first_order", "customers": 1, "unlocked": 0}
    assert (await run("achievements", "backfill", "no_such_rule", env=env))[0] == 2
