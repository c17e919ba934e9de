"""`/docs` and `/openapi.json` follow KIRANA_API_DOCS; production serves neither by default."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from kirana.api.app import create_app
from kirana.api.settings import Settings

SECRET = "a-real-production-secret-of-enough-length-123"


async def _statuses(app: FastAPI) -> tuple[int, int]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as c:
        return (await c.get("/docs")).status_code, (await c.get("/openapi.json")).status_code


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"environment": "production", "secret_key": SECRET}, (404, 404)),
        ({"environment": "production", "secret_key": SECRET, "api_docs": "schema"}, (404, 200)),
        ({"environment": "production", "secret_key": SECRET, "api_docs": "ui"}, (200, 200)),
        ({"environment": "test", "api_docs": "off"}, (404, 404)),
        ({"environment": "test"}, (200, 200)),
    ],
)
async def test_docs_follow_the_setting(
    settings: Settings, overrides: dict[str, str], expected: tuple[int, int]
) -> None:
    app = create_app(Settings(**{**settings.model_dump(), **overrides}), handle_signals=False)
    async with app.router.lifespan_context(app):
        assert await _statuses(app) == expected


def test_an_unknown_docs_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="ui, schema or off"):
        Settings(api_docs="maybe")
