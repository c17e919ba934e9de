"""Unpaid orders are capped per client address too, across accounts: several fresh accounts on
one address cannot hold more unpaid orders together than `KIRANA_ORDER_MAX_UNPAID_PER_IP`.

The address is the one the app sees behind the proxy settings: uvicorn's proxy-headers
middleware (what `kirana serve` runs, with `KIRANA_FORWARDED_ALLOW_IPS`) turns a trusted
proxy's X-Forwarded-For into the client address; an untrusted sender's header is ignored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from kirana.api.settings import Settings
from tests.integration.commerce.conftest import Catalog, customer, idem, sign_in

SHOPPER = "49.36.10.20"  # a global address (the cap counts no private or loopback one)
NEIGHBOUR = "49.36.10.21"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"order_max_unpaid": 5, "order_max_unpaid_per_ip": 2})


@pytest.fixture
async def via_proxy(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A client behind the shop's trusted proxy at 10.0.0.5."""
    proxied = ProxyHeadersMiddleware(app, trusted_hosts="10.0.0.5")
    transport = ASGITransport(app=proxied, raise_app_exceptions=False, client=("10.0.0.5", 40000))
    async with AsyncClient(transport=transport, base_url="http://kirana.test") as c:
        yield c


async def _place(client: AsyncClient, app: FastAPI, sku: str, forwarded_for: str) -> int:
    token = await sign_in(app, customer())  # a fresh account every time
    r = await client.post(
        "/v1/orders",
        json={"lines": [{"sku": sku, "quantity": 1}]},
        headers=idem() | {"Authorization": f"Bearer {token}", "X-Forwarded-For": forwarded_for},
    )
    if r.status_code == 409:
        body = r.json()
        assert body["type"].endswith("/too-many-unpaid-orders") and body["max_unpaid_orders_per_ip"] == 2
    return r.status_code


async def test_fresh_accounts_on_one_address_hold_at_most_the_per_address_cap(
    app: FastAPI, via_proxy: AsyncClient, shop: Catalog, client: AsyncClient
) -> None:
    await shop.product(sku="IP-1", stock=100)
    assert [await _place(via_proxy, app, "IP-1", SHOPPER) for _ in range(3)] == [201, 201, 409]
    # Another address is not held back, and neither is the proxy's own (private) address.
    assert await _place(via_proxy, app, "IP-1", NEIGHBOUR) == 201
    assert [await _place(via_proxy, app, "IP-1", "10.0.0.7") for _ in range(3)] == [201, 201, 201]
    # An untrusted sender cannot pick the address counted: the header is ignored.
    assert [await _place(client, app, "IP-1", SHOPPER) for _ in range(3)] == [201, 201, 201]
