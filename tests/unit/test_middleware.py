"""The one JSON media-type test of the ASGI layers: exactly the types FastAPI parses as JSON."""

from __future__ import annotations

import pytest

from kirana.api.middleware import parsed_as_json


@pytest.mark.parametrize(
    ("content_type", "is_json"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("Application/JSON", True),
        ("application/problem+json", True),
        ("application/vnd.kirana.order+json; version=1", True),
        ('application/json; charset="utf-8"', True),
        (None, False),
        ("", False),
        ("text/json", False),
        ("text/plain+json", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
        ("application/jsonx", False),
        ("application/json-patch", False),
        ("json", False),
        ("application", False),
    ],
)
def test_the_types_fastapi_parses_as_json(content_type: str | None, is_json: bool) -> None:
    assert parsed_as_json(content_type) is is_json
