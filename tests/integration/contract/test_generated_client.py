"""A Python client generated from `/openapi.json` by openapi-python-client (in a temporary
folder, never committed) runs a shopper's journey against the real server: register, sign in,
browse, cart, checkout, list orders. A document that generators misread fails here.

The generator runs in its own environment (`uv tool run`, pinned): its dependencies pin
versions of typer the shop's CLI does not use, so it stays out of the project's lock.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from kirana.api import redis as kirana_redis
from kirana.api.db.engine import Database
from kirana.api.notify.providers import ConsoleEmail, ConsoleSms, Message, Notifier
from kirana.api.settings import Settings
from tests.integration.contract.conftest import Shop

GENERATOR = "openapi-python-client==0.29.1"
UV = shutil.which("uv") or str(Path.home() / ".cache/kirana/uv-0.13.9/bin/uv")


def _generate(doc: dict[str, Any], out: Path) -> Path:
    spec = out / "openapi.json"
    spec.write_text(json.dumps(doc))
    cmd = [UV, "tool", "run", "--from", GENERATOR, "openapi-python-client", "generate"]
    cmd += ["--path", str(spec), "--output-path", str(out / "kirana_shop_client"), "--meta", "none"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env=os.environ)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Warning" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return out / "kirana_shop_client"


def _load(package_dir: Path) -> Any:
    sys.path.insert(0, str(package_dir.parent))
    try:
        importlib.invalidate_caches()
        return importlib.import_module(package_dir.name)
    finally:
        sys.path.remove(str(package_dir.parent))


def _api(pkg: Any, tag: str, op: str) -> Any:
    return importlib.import_module(f"{pkg.__name__}.api.{tag}.{op}")


def _models(pkg: Any) -> Any:
    return importlib.import_module(f"{pkg.__name__}.models")


def _texts_as_the_worker_sends_them(database_url: str, redis_url: str) -> list[Message]:
    """What the workers do with the sign-up's outbox event (this server runs no worker): relay
    it and run the consumers, here with a console SMS provider whose sent texts the customer reads."""
    from kirana.workers import consumers, relay

    async def work() -> list[Message]:
        db = Database(database_url)
        redis = kirana_redis.connect(redis_url)
        sms = ConsoleSms()
        try:
            await relay.relay_once(db, redis)
            deps = consumers.Deps(
                db=db,
                redis=redis,
                notifier=Notifier(sms=sms, email=ConsoleEmail()),
                settings=Settings(database_url=database_url, redis_url=redis_url, environment="test"),
            )
            await consumers.consume_once(deps, consumer="contract-test")
        finally:
            await redis.aclose()
            await db.dispose()
        return list(sms.sent)

    return asyncio.run(work())


@pytest.mark.timeout(600)
def test_a_generated_client_buys_a_basket(shop: Shop, tmp_path: Path, redis_url: str) -> None:
    doc = httpx.get(f"{shop.base}/openapi.json").json()
    pkg = _load(_generate(doc, tmp_path))
    m = _models(pkg)
    anon = pkg.Client(base_url=shop.base, raise_on_unexpected_status=True)

    phone = f"+919{uuid.uuid4().int % 10**9:09d}"
    password = "staple-battery-horse-42"
    r = _api(pkg, "accounts", "accounts_register").sync_detailed(
        client=anon, body=m.RegisterIn(phone=phone, password=password, name="Generated")
    )
    assert r.status_code == 202 and isinstance(r.parsed, m.SignupAccepted), r
    texts = _texts_as_the_worker_sends_them(shop.database_url, redis_url)
    code = next(t.text for t in texts if t.to == phone).split("code: ", 1)[1][:6]
    account = _api(pkg, "accounts", "accounts_verify_registration").sync(
        client=anon, body=m.RegisterVerifyIn(signup=r.parsed.signup, code=code)
    )
    assert isinstance(account, m.AccountRead) and account.phone == phone, account
    pair = _api(pkg, "accounts", "accounts_login").sync(
        client=anon, body=m.LoginIn(identifier=phone, password=password)
    )
    assert isinstance(pair, m.TokenPair), pair
    me = pkg.AuthenticatedClient(base_url=shop.base, token=pair.access_token, raise_on_unexpected_status=True)

    page = _api(pkg, "catalog", "catalog_list_products").sync(client=me, in_stock=True, limit=10)
    assert isinstance(page, m.ProductPage) and page.items
    product = _api(pkg, "catalog", "catalog_get_product").sync(client=me, ref=page.items[0].slug)
    assert isinstance(product, m.ProductRead)
    variant = next(v for v in product.variants if v.in_stock and v.is_active)

    cart = _api(pkg, "cart", "cart_add_line").sync(
        client=me, body=m.LineAdd(sku=variant.sku, quantity=2), idempotency_key=str(uuid.uuid4())
    )
    assert isinstance(cart, m.CartRead), cart
    assert [(line.sku, line.quantity) for line in cart.lines] == [(variant.sku, 2)]

    order = _api(pkg, "orders", "orders_checkout").sync(
        client=me,
        body=m.Checkout(expected_total_paise=cart.total_paise),
        idempotency_key=str(uuid.uuid4()),
    )
    assert isinstance(order, m.OrderRead), order
    assert order.total_paise == cart.total_paise and order.status == m.Status.PENDING_PAYMENT

    history = _api(pkg, "orders", "orders_my_orders").sync(client=me)
    assert isinstance(history, m.OrderPage)
    assert [o.id for o in history.items] == [order.id]

    refused = _api(pkg, "orders", "orders_checkout").sync_detailed(
        client=pkg.AuthenticatedClient(base_url=shop.base, token=pair.access_token),
        body=m.Checkout(),
        idempotency_key="",  # documented as required: the server says 428 and the client parses it
    )
    assert refused.status_code in (422, 428)
    assert isinstance(refused.parsed, m.Problem)
