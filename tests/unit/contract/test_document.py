"""The whole OpenAPI document: valid OpenAPI 3.1, and every operation complete (a readable
operationId, tags, a summary, security and `x-permission`, its error answers as problem+json
with their problem types, and an example of its request body that fits the schema).

`defects` names what is missing per operation, so a route added without any of it fails here
with its name; the last tests show the walk catches such routes.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from fastapi import FastAPI
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from pydantic import BaseModel
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from kirana.api.access.deps import CurrentUser, Public
from kirana.api.app import create_app
from kirana.api.contract import catalogue
from kirana.api.idempotency.deps import IdempotentRequiredDep
from kirana.api.settings import Settings

METHODS = {"get", "post", "put", "patch", "delete"}
PROBLEM = {"$ref": "#/components/schemas/Problem"}


class Thing(BaseModel):
    name: str


def _app() -> FastAPI:
    return create_app(
        Settings(database_url="postgresql+asyncpg://u@localhost/x", redis_url="redis://localhost")
    )


@functools.cache
def _doc() -> dict[str, Any]:
    """The shop's document, built once for the tests that only read it."""
    return _app().openapi()


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource("urn:doc", DRAFT202012.create_resource(doc))
    rooted = _reroot(schema)
    return Draft202012Validator(rooted, registry=registry)


def _reroot(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: ("urn:doc" + v if k == "$ref" and v.startswith("#") else _reroot(v)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_reroot(v) for v in node]
    return node


def defects(doc: dict[str, Any]) -> list[str]:
    """What each operation of `doc` lacks, one line per defect."""
    found: list[str] = []
    types = {t.uri for t in catalogue.problem_types()}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            name = f"{method.upper()} {path}"

            def lacks(what: str, name: str = name) -> None:
                found.append(f"{name}: {what}")

            if not re.fullmatch(r"[a-z][a-z0-9-]*\.[a-z][a-z0-9_]*", op.get("operationId", "")):
                lacks("a tag.function operationId")
            if not op.get("tags"):
                lacks("tags")
            if not op.get("summary"):
                lacks("a summary (a docstring on the route)")
            if "security" not in op or "x-permission" not in op:
                lacks("security and x-permission")
            schemes = {k for option in op.get("security", []) for k in option}
            answers = op.get("responses", {})
            if "bearer" in schemes and "401" not in answers:
                lacks("its 401")
            if op.get("security") == [{"bearer": []}] and "403" not in answers:
                lacks("its 403")
            if "{" in path and "404" not in answers:
                lacks("its 404")
            if method in {"post", "put", "patch"} and not {"413", "415"} <= set(answers):
                lacks("its 413 and 415")
            for code, answer in answers.items():
                if int(code) < 400 or code == "503" and path == "/readyz":
                    continue
                content = answer.get("content", {})
                if (
                    list(content) != ["application/problem+json"]
                    or content["application/problem+json"].get("schema") != PROBLEM
                ):
                    lacks(f"{code} as application/problem+json Problem")
                listed = answer.get("x-problem-types") or []
                if not listed or not set(listed) <= types:
                    lacks(f"{code}'s problem types (x-problem-types, from docs/errors.md)")
                if code == "401" and "WWW-Authenticate" not in answer.get("headers", {}):
                    lacks("WWW-Authenticate on its 401")
                if code == "429" and "Retry-After" not in answer.get("headers", {}):
                    lacks("Retry-After on its 429")
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                if "example" not in body:
                    lacks("an example request body (kirana.api.contract.examples)")
                else:
                    errors = list(_validator(doc, body["schema"]).iter_errors(body["example"]))
                    if errors:
                        lacks(f"an example that fits its schema: {errors[0].message}")
    return found


def test_the_document_is_valid_openapi() -> None:
    doc = _doc()
    validate(doc)
    assert doc["openapi"].startswith("3.1")


def test_every_operation_is_complete() -> None:
    assert defects(_doc()) == []


def test_access_rules_become_security_and_permissions() -> None:
    paths = _doc()["paths"]
    place = paths["/v1/orders"]["post"]
    assert place["security"] == [{"bearer": []}]
    assert place["x-permission"] == "orders:create"
    assert "`orders:create`" in place["description"]
    assert paths["/livez"]["get"]["security"] == []
    assert paths["/livez"]["get"]["x-permission"] == "public"
    cart = paths["/v1/cart"]["get"]
    assert cart["security"] == [{"bearer": []}, {"cartToken": []}, {}]
    assert paths["/v1/auth/me"]["get"]["x-permission"] == "authenticated"


def test_idempotency_key_is_described_and_required_where_the_server_requires_it() -> None:
    paths = _doc()["paths"]

    def key(op: dict[str, Any]) -> dict[str, Any]:
        return next(p for p in op["parameters"] if p["name"] == "Idempotency-Key")

    place, add = paths["/v1/orders"]["post"], paths["/v1/cart/lines"]["post"]
    assert key(place)["required"] is True and "428" in place["responses"]
    assert key(add)["required"] is False and "428" not in add["responses"]
    assert key(add)["schema"]["pattern"] == r"^[A-Za-z0-9][A-Za-z0-9_\-:.]{7,254}$"
    types = place["responses"]["409"]["x-problem-types"]
    assert "https://kirana.dev/problems/idempotency-key-in-use" in types


def test_a_route_missing_its_docstring_or_example_is_named() -> None:
    app = _app()

    @app.post("/v1/things", tags=["things"], dependencies=[Public])
    async def make_thing(body: Thing) -> dict[str, str]:
        return {}

    found = defects(app.openapi())
    assert "POST /v1/things: a summary (a docstring on the route)" in found
    assert "POST /v1/things: an example request body (kirana.api.contract.examples)" in found


def test_a_new_route_gets_its_errors_from_its_dependencies() -> None:
    app = _app()

    @app.post("/v1/things/{thing_id}/buy", tags=["things"])
    async def buy_thing(thing_id: int, user: CurrentUser, idem: IdempotentRequiredDep) -> dict[str, str]:
        """Buy a thing."""
        return {}

    op = app.openapi()["paths"]["/v1/things/{thing_id}/buy"]["post"]
    assert {"401", "403", "404", "409", "413", "415", "422", "428"} <= set(op["responses"])
    assert op["security"] == [{"bearer": []}] and op["x-permission"] == "authenticated"
    assert op["responses"]["401"]["headers"]["WWW-Authenticate"]
    assert op["responses"]["428"]["content"]["application/problem+json"]["schema"] == PROBLEM


def test_problem_examples_fit_the_problem_schema() -> None:
    doc = _doc()
    validator = _validator(doc, PROBLEM)
    for item in doc["paths"].values():
        for op in item.values():
            for answer in op["responses"].values():
                media = answer.get("content", {}).get("application/problem+json", {})
                for example in media.get("examples", {}).values():
                    assert list(validator.iter_errors(example["value"])) == []
