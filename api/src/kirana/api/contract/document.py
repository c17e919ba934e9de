"""Build `/openapi.json` from the routes and what their dependencies declare.

Nothing here is written per route. Each operation gets, from the dependency tree FastAPI
already resolves for it:

- `security` and `x-permission` from its access rule (`Public`, `OptionalUser`, `CurrentUser`,
  `Require(...)`, `StepUp`); a guest cart token where the route reads `X-Cart-Token`;
- an error answer for every `KiranaError` its dependencies declare with `errors.raises` (401,
  403, 409, 422, 428, ...), and for what the route's shape implies: 404 with path parameters,
  413/415/400 on a body method (`middleware`), 422 with any parameter or body; routes add the
  errors only their own code raises with `responses=contract.document.raising(...)`;
- every error answer as `application/problem+json` `Problem`, listing its problem `type` URIs
  (`x-problem-types`) with an example of each; `WWW-Authenticate` on 401, `Retry-After` on 429
  and 503, `X-Request-ID` on every answer; `Location` on a 201 and `ETag`/304 on a conditional
  read where the route says so (`created()`, `conditional()`);
- the `Idempotency-Key` header's format, and `required` where the route refuses to run without
  one (it depends on something that raises `KeyRequired`);
- a summary from the first line of the route's docstring and an example of each request body.

`tests/unit/contract/test_document.py` checks the whole document, so a new route that lacks any
of it (a docstring, an example) fails there.

Slightly over 400 lines: one pass over the routes, in the order the list above gives.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args, get_origin

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from kirana.api import errors, inputs, problems
from kirana.api.access import deps as access
from kirana.api.contract import catalogue, examples
from kirana.api.idempotency import service as idempotency

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
BEARER, CART_TOKEN = "bearer", "cartToken"
BODY_METHODS = frozenset({"post", "put", "patch"})
SECURITY_SCHEMES: dict[str, Any] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from `POST /v1/auth/login` (or `/v1/auth/refresh`).",
    },
    CART_TOKEN: {
        "type": "apiKey",
        "in": "header",
        "name": "X-Cart-Token",
        "description": "A guest cart's secret token, returned once by `POST /v1/carts`.",
    },
}
HEADERS: dict[str, Any] = {
    "X-Request-ID": {
        "description": "The request's id (the caller's `X-Request-ID` when it is 1-128 characters "
        "of `A-Za-z0-9._:-`, else a new one); quote it when reporting a problem.",
        "required": True,
        "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:\-]{1,128}$"},
    },
    "WWW-Authenticate": {
        "description": 'The scheme to authenticate with (`Bearer`); `Bearer error="insufficient_user_'
        'authentication"` when a recent two-factor step-up is needed (RFC 9470).',
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "ETag": {
        "description": "A strong validator of the body; send it back in `If-None-Match`.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "The URL of what was created (a path on this API): GET it for its state.",
        "required": True,
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the same "
        "Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
IDEMPOTENCY_KEY_SCHEMA = {
    "type": "string",
    "pattern": idempotency.KEY_PATTERN.pattern,
    "minLength": 8,
    "maxLength": 255,
}
_RULE_STRENGTH = {"public": 0, "user": 1, "require": 2}


@dataclass
class Facts:
    """What an operation's dependency tree says about it."""

    rule: str = "public"
    permissions: tuple[str, ...] = ()
    reads_principal: bool = False
    step_up: bool = False
    raises: list[type[errors.KiranaError]] = field(default_factory=list)


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def facts_of(dependant: Dependant) -> Facts:
    """The access rule and the declared errors of one route's dependency tree."""
    facts = Facts()
    for call in _calls(dependant):
        rule = getattr(call, access.ACCESS_RULE_ATTR, None)
        if rule is not None and _RULE_STRENGTH[rule[0]] >= _RULE_STRENGTH[facts.rule]:
            facts.rule = rule[0]
            facts.permissions = tuple(sorted({*facts.permissions, *rule[1]}))
        facts.reads_principal |= call is access.get_principal
        facts.step_up |= call is access.require_step_up
        facts.raises.extend(c for c in errors.raised_by(call) if c not in facts.raises)
    return facts


def conditional() -> dict[int | str, dict[str, Any]]:
    """`responses=` for a read that answers with an `ETag` and 304 (no body) when the request's
    `If-None-Match` names it; the route takes `If-None-Match` as a header parameter."""
    etag = {"ETag": {"$ref": "#/components/headers/ETag"}}
    return {
        200: {"headers": dict(etag)},
        304: {"description": "Not modified: `If-None-Match` names the current ETag", "headers": etag},
    }


def created() -> dict[int | str, dict[str, Any]]:
    """`responses=` for a 201 whose answer names what it created in `Location`."""
    return {201: {"headers": {"Location": {"$ref": "#/components/headers/Location"}}}}


def raising(*classes: type[errors.KiranaError]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route whose own code raises `classes` (beyond what its dependencies
    declare): grouped by status, completed by `build`."""
    out: dict[int | str, dict[str, Any]] = {}
    for cls in classes:
        answer = out.setdefault(cls.status, {"description": cls.title, "x-problem-types": []})
        answer["x-problem-types"].append(problems.TYPE_BASE + cls.code)
    return out


def _structural(method: str, path: str, op: dict[str, Any]) -> list[type[errors.KiranaError]]:
    found: list[type[errors.KiranaError]] = []
    if "{" in path:
        found.append(errors.NotFound)
    if method in BODY_METHODS:
        found += [errors.PayloadTooLarge, errors.UnsupportedMediaType, errors.KiranaError]
    if op.get("parameters") or op.get("requestBody"):
        found.append(errors.ValidationFailed)
    return found


def _security(facts: Facts, op: dict[str, Any]) -> list[dict[str, list[str]]]:
    reads_cart = any(p.get("name") == "X-Cart-Token" for p in op.get("parameters", []))
    if facts.rule != "public":
        return [{BEARER: []}]
    options: list[dict[str, list[str]]] = []
    if facts.reads_principal:
        options.append({BEARER: []})
    if reads_cart:
        options.append({CART_TOKEN: []})
    return [*options, {}] if options else []


def _permission(facts: Facts) -> str:
    if facts.rule == "require":
        return " ".join(facts.permissions)
    return "authenticated" if facts.rule == "user" else "public"


def _access_note(facts: Facts) -> str:
    if facts.rule == "public":
        who = "Public." + (" A bearer token, when sent, is checked." if facts.reads_principal else "")
    elif facts.rule == "user":
        who = "Signed in (bearer token)."
    else:
        who = "Requires " + ", ".join(f"`{p}`" for p in facts.permissions) + " (bearer token)."
    if facts.step_up:
        who += " Needs a recent two-factor step-up (`POST /v1/auth/step-up`)."
    return f"**Access:** {who}"


def _problem_answer(answer: dict[str, Any], types: list[str], status: int, types_: _Types) -> None:
    known = answer.setdefault("x-problem-types", [])
    known.extend(t for t in types if t not in known)
    if not known and status in types_.single:  # a route's own `responses=`: the one type of it
        known.append(types_.single[status])
    titles = types_.titles
    if answer.get("description") in (None, "", "Validation Error"):
        answer["description"] = "; ".join(titles.get(t, "Error") for t in known) or "Error"
    content = answer.setdefault("content", {})
    media = content.setdefault(problems.PROBLEM_JSON, {})
    content.pop("application/json", None)
    media["schema"] = PROBLEM_REF
    media["examples"] = {
        t.removeprefix(problems.TYPE_BASE): {
            "value": {"type": t, "title": titles.get(t, "Error"), "status": status, "detail": "..."}
        }
        for t in known
    }
    headers = answer.setdefault("headers", {})
    if status == 401:
        headers["WWW-Authenticate"] = {"$ref": "#/components/headers/WWW-Authenticate"}
    if status in (429, 503):
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}


@dataclass(frozen=True)
class _Types:
    """The problem types of the app's error classes, read once per document."""

    titles: dict[str, str]
    single: dict[int, str]  # a status only one type has: that type

    @classmethod
    def read(cls) -> _Types:
        types = catalogue.problem_types()
        by_status: dict[int, list[str]] = {}
        for t in types:
            for status in t.statuses:
                by_status.setdefault(status, []).append(t.uri)
        single = {status: uris[0] for status, uris in by_status.items() if len(uris) == 1}
        return cls({t.uri: t.title for t in types}, single)


def _errors(facts: Facts, method: str, path: str, op: dict[str, Any], types_: _Types) -> None:
    declared = [*facts.raises, *_structural(method, path, op)]
    if facts.reads_principal or facts.rule != "public":
        declared.append(errors.Unauthorized)
    if facts.rule != "public":
        declared.append(errors.PermissionDenied)
    by_status: dict[int, list[str]] = {}
    for cls in declared:
        uri = problems.TYPE_BASE + cls.code
        types = by_status.setdefault(cls.status, [])
        if uri not in types:
            types.append(uri)
    responses = op.setdefault("responses", {})
    for status, types in by_status.items():
        responses.setdefault(str(status), {"description": types_.titles[types[0]]})
    for code, answer in responses.items():
        status = int(code) if code.isdigit() else 0
        if status >= 400 and not _foreign_content(answer):
            _problem_answer(answer, by_status.get(status, []), status, types_)
        answer.setdefault("headers", {})["X-Request-ID"] = {"$ref": "#/components/headers/X-Request-ID"}


def _foreign_content(answer: dict[str, Any]) -> bool:
    """An error answer that documents its own non-problem body (`/readyz`'s 503)."""
    content = answer.get("content") or {}
    fastapi_422 = "#/components/schemas/HTTPValidationError"
    return any(
        media != problems.PROBLEM_JSON and "schema" in v and v["schema"].get("$ref") != fastapi_422
        for media, v in content.items()
    )


def _headers(facts: Facts, op: dict[str, Any]) -> None:
    required = idempotency.KeyRequired in facts.raises
    for param in op.get("parameters", []):
        if param["in"] == "header" and param["name"] == "Idempotency-Key":
            param["required"] = required
            param["schema"] = dict(IDEMPOTENCY_KEY_SCHEMA)
            param["description"] = (
                "A fresh UUID per attempt, reused on its retries: the effect happens once and a "
                "retry gets the stored answer (`Idempotent-Replayed: true`). "
                + ("Required here (428 without one)." if required else "Optional.")
            )
        if param["in"] == "header" and param["name"] == "X-Cart-Token":
            param["schema"] = {"type": "string", "minLength": 16, "maxLength": 200}
            param["description"] = "A guest cart's token (from `POST /v1/carts`); ignored when signed in."
    for code, answer in op.get("responses", {}).items():
        if code.startswith("2") and "Idempotency-Key" in _param_names(op):
            hdr = answer.setdefault("headers", {})
            hdr["Idempotent-Replayed"] = {"$ref": "#/components/headers/Idempotent-Replayed"}


def _uses_text(tp: Any) -> bool:
    if get_origin(tp) is Annotated:
        args = get_args(tp)
        return any(getattr(m, "func", None) is inputs.check_text for m in args[1:]) or _uses_text(args[0])
    return any(_uses_text(a) for a in get_args(tp))


def _param_facts(dependant: Dependant) -> dict[str, tuple[bool, str | None]]:
    """Per parameter: whether it is `inputs.Text` (checked by `check_text`) and the pattern it
    is validated against (pydantic leaves a pattern after a validator out of the schema)."""
    found: dict[str, tuple[bool, str | None]] = {}
    for sub in dependant.dependencies:
        found |= _param_facts(sub)
    for param in [*dependant.query_params, *dependant.path_params, *dependant.header_params]:
        info = param.field_info
        metadata = list(getattr(info, "metadata", []))
        text = _uses_text(info.annotation) or any(
            getattr(m, "func", None) is inputs.check_text for m in metadata
        )
        pattern = next((m.pattern for m in metadata if isinstance(getattr(m, "pattern", None), str)), None)
        found[info.alias or param.name] = (text, pattern)
    return found


def _strings(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if schema.get("type") == "string":
        yield schema
    for sub in schema.get("anyOf", []):
        yield from _strings(sub)
    if isinstance(schema.get("items"), dict):
        yield from _strings(schema["items"])


def _text_params(dependant: Dependant, op: dict[str, Any]) -> None:
    facts = _param_facts(dependant)
    for param in op.get("parameters", []):
        text, pattern = facts.get(param["name"], (False, None))
        if param["name"] in ("Idempotency-Key", "X-Cart-Token"):
            continue
        for schema in _strings(param["schema"]):
            if pattern and "pattern" not in schema:
                schema["pattern"] = pattern
            if text:
                inputs.document_text(schema)


def _param_names(op: dict[str, Any]) -> set[str]:
    return {p["name"] for p in op.get("parameters", [])}


def _summary(route: APIRoute, op: dict[str, Any]) -> None:
    doc = inspect.getdoc(route.endpoint) or ""
    auto = route.name.replace("_", " ").title()
    if route.summary is None and doc and op.get("summary") == auto:
        op["summary"] = doc.split("\n\n")[0].replace("\n", " ").split(". ")[0].rstrip(".")
    elif not doc and route.summary is None:
        op.pop("summary", None)  # the whole-document test names routes without a docstring


def _example(op: dict[str, Any]) -> None:
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    if body is None:
        return
    name = body.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
    if name in examples.REQUESTS:
        body["example"] = examples.REQUESTS[name]


def build(app: FastAPI) -> dict[str, Any]:
    """The whole OpenAPI document of `app`."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem_schema = problems.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    components["headers"] = HEADERS
    routes = {}
    for rc in iter_route_contexts(app.routes):
        route = rc.original_route
        if isinstance(route, APIRoute):
            for method in rc.methods or ():
                routes[(rc.path_format, method.lower())] = (route, rc.dependant)
    types_ = _Types.read()
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            route, dependant = routes[(path, method)]
            facts = facts_of(dependant)
            op["security"] = _security(facts, op)
            op["x-permission"] = _permission(facts)
            _summary(route, op)
            note = _access_note(facts)
            op["description"] = (op.get("description", "") + "\n\n" + note).strip()
            _errors(facts, method, path, op, types_)
            _headers(facts, op)
            _text_params(dependant, op)
            _example(op)
    doc = _readable_names(doc)
    _exact_bounds(doc)
    return doc


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _exact_bounds(node: Any) -> None:
    """Integer bounds as integers: FastAPI's OpenAPI model holds them as floats, and
    `float(2**63 - 1)` is 2^63, so `maximum` promised one more than `bigint` holds."""
    if isinstance(node, dict):
        for key in _BOUNDS:
            value = node.get(key)
            if isinstance(value, float) and value.is_integer():
                node[key] = max(inputs.INT64_MIN, min(inputs.INT64_MAX, int(value)))
        for value in node.values():
            _exact_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _exact_bounds(value)


def _readable_names(doc: dict[str, Any]) -> dict[str, Any]:
    """`CatalogSort` and `SearchSort`, not `kirana__api__search__schemas__Sort`: FastAPI names
    two models of one name by their module, and keeps both titles `Sort`, which generators read
    as one enum with conflicting values."""
    schemas = doc["components"]["schemas"]
    renames = {}
    for name in [n for n in schemas if "__" in n]:
        parts = name.split("__")
        new = parts[2].capitalize() + parts[-1] if len(parts) >= 4 else name.replace("__", "")
        renames[f"#/components/schemas/{name}"] = f"#/components/schemas/{new}"
        schemas[new] = {**schemas.pop(name), "title": new}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: renames.get(v, v) if k == "$ref" else walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(doc) if renames else doc


def install(app: FastAPI) -> None:
    """Serve `build(app)` as the app's OpenAPI document (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
