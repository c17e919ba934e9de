"""Every parameter of every route in the OpenAPI document, sent NUL bytes, lone surrogates,
over-long strings and out-of-range integers, answers 4xx problem+json (never a 500).

A small generator over `/openapi.json`: for each operation it builds a plain valid-looking
request (path parameters, required body fields), then poisons one parameter or body field at a
time. It signs in as an owner with two-factor enabled and a fresh step-up, so requests get
past authorisation to validation and the database. Property-based negative testing of the
same document (schemathesis) runs separately; this sweep is the fixed list of values a
review found reaching PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from tests.integration.access.helpers import signed_in

BAD_STRINGS: list[tuple[str, str]] = [
    ("nul", "a\x00b"),
    ("lone-surrogate", "a\ud800b"),
    ("over-long", "x" * 20_000),
]
BAD_INTEGERS: list[tuple[str, int]] = [("2^63", 2**63), ("-2^63-1", -(2**63) - 1), ("1e30", 10**30)]
# Routes that would end the sweep's own session or lock its account.
SKIP = {("post", "/v1/auth/logout"), ("post", "/v1/auth/sessions/revoke-all"), ("post", "/v1/auth/password")}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = spec["components"]["schemas"][name]
    if "anyOf" in schema:
        options = [_resolve(spec, s) for s in schema["anyOf"] if s.get("type") != "null"]
        if options:
            return options[0]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(spec, schema["allOf"][0])
    return schema


def _kind(spec: dict[str, Any], schema: dict[str, Any]) -> str:
    s = _resolve(spec, schema)
    if "enum" in s:
        return "enum"
    return str(s.get("type", "object" if "properties" in s else "any"))


def _plain(spec: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> Any:
    """A simple value of the schema's type (valid where the schema is simple)."""
    s = _resolve(spec, schema)
    if "enum" in s:
        return s["enum"][0]
    if "const" in s:
        return s["const"]
    kind = s.get("type", "object" if "properties" in s else "string")
    if kind == "string":
        fmt = s.get("format")
        if fmt == "uuid":
            return str(uuid.uuid4())
        if fmt == "email":
            return "sweep@example.com"
        if fmt == "date-time":
            return "2026-01-01T00:00:00Z"
        return "a" * max(int(s.get("minLength", 8)), 8)
    if kind == "integer":
        return max(int(s.get("minimum", 1)), 1)
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if kind == "array":
        return [_plain(spec, s.get("items", {}), depth + 1)] if depth < 3 else []
    if kind == "object" and depth < 4:
        props = s.get("properties", {})
        return {k: _plain(spec, props[k], depth + 1) for k in s.get("required", []) if k in props}
    return {}


@dataclass
class Case:
    method: str
    path: str
    where: str
    name: str
    value_name: str
    path_params: dict[str, str] = field(default_factory=dict)
    query: list[tuple[str, str]] = field(default_factory=list)
    raw_query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path} {self.where}:{self.name}={self.value_name}"


def _body_fields(
    spec: dict[str, Any], schema: dict[str, Any], prefix: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Paths to every string/integer field reachable in a body (first array item included)."""
    s = _resolve(spec, schema)
    kind = _kind(spec, s)
    if kind in ("string", "integer"):
        yield prefix, kind
    elif kind == "array" and len(prefix) < 6:
        yield from _body_fields(spec, s.get("items", {}), (*prefix, 0))
    elif kind == "object" and len(prefix) < 6:
        for name, sub in s.get("properties", {}).items():
            yield from _body_fields(spec, sub, (*prefix, name))


def _with(body: Any, spec: dict[str, Any], schema: dict[str, Any], path: tuple[Any, ...], value: Any) -> Any:
    """`body` with the field at `path` set to `value` (creating containers on the way)."""
    if not path:
        return value
    s = _resolve(spec, schema)
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(body) if isinstance(body, list) and body else [_plain(spec, s.get("items", {}))]
        items[0] = _with(items[0], spec, s.get("items", {}), rest, value)
        return items
    obj = dict(body) if isinstance(body, dict) else {}
    sub = s.get("properties", {}).get(head, {})
    obj[head] = _with(obj.get(head, _plain(spec, sub)), spec, sub, rest, value)
    return obj


def cases(spec: dict[str, Any]) -> Iterator[Case]:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if (method, path) in SKIP:
                continue
            params = op.get("parameters", [])
            plain_path = {p["name"]: str(_plain(spec, p["schema"])) for p in params if p["in"] == "path"}
            body_schema = (
                op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            )
            plain_body = _plain(spec, body_schema) if body_schema else None

            def case(
                where: str, name: str, value_name: str, _m: str = method, _p: str = path, **kw: Any
            ) -> Case:
                kw.setdefault("path_params", dict(plain_path))  # noqa: B023 - used at once
                return Case(_m, _p, where, name, value_name, body=plain_body, **kw)  # noqa: B023

            for p in params:
                kind = _kind(spec, p["schema"])
                where, name = p["in"], p["name"]
                if kind in ("string", "array", "enum", "any"):
                    for vname, v in BAD_STRINGS:
                        if where == "path":
                            if vname == "lone-surrogate":
                                continue  # not expressible in a URL (UTF-8 has no lone surrogates)
                            yield case(where, name, vname, path_params={**plain_path, name: v})
                        elif where == "query":
                            if vname == "lone-surrogate":
                                yield case(where, name, vname, raw_query=f"{name}=%ED%A0%80")
                            else:
                                yield case(where, name, vname, query=[(name, v)])
                        elif where == "header" and vname == "over-long":
                            yield case(where, name, vname, headers={name: v})
                elif kind == "integer":
                    for vname, iv in BAD_INTEGERS:
                        if where == "path":
                            yield case(where, name, vname, path_params={**plain_path, name: str(iv)})
                        elif where == "query":
                            yield case(where, name, vname, query=[(name, str(iv))])
                        else:
                            yield case(where, name, vname, headers={name: str(iv)})
            if body_schema:
                for fpath, kind in _body_fields(spec, body_schema):
                    name = ".".join(map(str, fpath)) or "(body)"
                    bad: list[tuple[str, Any]] = list(BAD_STRINGS if kind == "string" else BAD_INTEGERS)
                    for vname, v in bad:
                        yield Case(
                            method, path, "body", name, vname, path_params=dict(plain_path),
                            body=_with(plain_body, spec, body_schema, fpath, v),
                        )  # fmt: skip


async def _send(client: AsyncClient, c: Case, auth: dict[str, str]) -> tuple[int, str, str]:
    url = c.path
    for k, v in c.path_params.items():
        from urllib.parse import quote

        url = url.replace("{" + k + "}", quote(v, safe=""))
    if c.raw_query:
        url = f"{url}?{c.raw_query}"
    headers = {**auth, **c.headers}
    if c.method in ("post", "put", "patch"):
        headers.setdefault("Idempotency-Key", f"sweep-{uuid.uuid4()}")
    content = None
    if c.body is not None and c.method in ("post", "put", "patch"):
        content = json.dumps(c.body).encode()  # ensure_ascii: a lone surrogate travels as \ud800
        headers["content-type"] = "application/json"
    r = await client.request(c.method.upper(), url, params=c.query or None, headers=headers, content=content)
    return r.status_code, r.headers.get("content-type", ""), r.text[:300]


async def test_no_parameter_of_any_route_turns_bad_input_into_a_500(app: FastAPI) -> None:
    # An unhandled error becomes the 500 a real server would send, not an exception here.
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://sweep") as client:
        await _sweep(app, client)


async def _sweep(app: FastAPI, client: AsyncClient) -> None:
    owner = await signed_in(app, client, roles=("customer", "owner"), totp=True)
    spec = (await client.get("/openapi.json")).json()
    sent, failures, reached = 0, [], set()
    for c in cases(spec):
        try:
            status, ctype, text = await _send(client, c, owner.headers)
        except Exception as exc:  # the app broke the response half-way (a streamed 500)
            status, ctype, text = 599, "", repr(exc)
        sent += 1
        if status >= 500 or (status >= 400 and not ctype.startswith("application/problem+json")):
            failures.append(f"{c.label} -> {status} {ctype} {text[:120]}")
        elif status not in (401, 403):
            reached.add((c.method, c.path))
    assert sent > 300
    assert len(reached) > 30  # the sweep got past authentication on most routes
    assert not failures, f"{len(failures)} of {sent} requests:\n" + "\n".join(failures)
