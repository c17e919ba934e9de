"""Every operation in the OpenAPI document has a readable, unique operationId (`tag.function`)."""

from __future__ import annotations

import re

from kirana.api.app import create_app
from kirana.api.settings import Settings


def test_operation_ids_read_as_tag_dot_name_and_are_unique() -> None:
    app = create_app(
        Settings(database_url="postgresql+asyncpg://u@localhost/x", redis_url="redis://localhost")
    )
    ids = [
        op["operationId"]
        for item in app.openapi()["paths"].values()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert ids and len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert [i for i in ids if not re.fullmatch(r"[a-z][a-z0-9-]*\.[a-z][a-z0-9_]*", i)] == []
    assert "orders.place" in ids or any(i.startswith("orders.") for i in ids)


def test_validation_errors_are_documented_as_problem_json() -> None:
    app = create_app(
        Settings(database_url="postgresql+asyncpg://u@localhost/x", redis_url="redis://localhost")
    )
    doc = app.openapi()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert {"type", "title", "status"} <= set(doc["components"]["schemas"]["Problem"]["required"])
    place = doc["paths"]["/v1/orders"]["post"]["responses"]["422"]
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    assert list(place["content"]) == ["application/problem+json"]
    assert place["content"]["application/problem+json"]["schema"] == problem_ref
