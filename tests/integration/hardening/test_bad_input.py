"""Bad text and numbers that used to reach PostgreSQL: each answers 422 problem+json."""

from __future__ import annotations

import base64
import json
import uuid

from httpx import AsyncClient


def _cursor(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_a_title_cursor_holding_nul_is_refused(client: AsyncClient) -> None:
    cursor = _cursor({"s": "title", "k": "a\u0000b", "i": str(uuid.uuid4())})
    r = await client.get("/v1/catalog/products", params={"sort": "title", "cursor": cursor})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_listing_filters_refuse_nul_and_out_of_range_prices_anonymously(client: AsyncClient) -> None:
    for params in ({"q": "\x00"}, {"category": "\x00"}, {"brand": "\x00"}, {"attr": "colour:\x00"},
                   {"min_price_paise": str(2**63)}):  # fmt: skip
        r = await client.get("/v1/catalog/products", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
