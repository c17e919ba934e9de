"""What the API accepts as text and as an integer, defined once.

PostgreSQL refuses a NUL character in text, Python strings may hold lone surrogates that no
encoding can write, and its integers have no upper bound while `bigint` stops at 2^63-1. Each
of these used to reach the database and answer 500. Every string and integer the API takes
(bodies, query, path, headers, cursor contents) is checked here, at validation, so it answers
422 problem+json instead:

- `Text` / `Int64`: the annotated types for route parameters and schema fields;
- `Input`: the base of every request body model; its validator applies the same checks to
  every string and integer anywhere in the body (nested models, lists, dicts), so no field can
  be forgotten;
- `check_text` / `check_int` / `check_value`: the same checks for values decoded by hand (an
  opaque cursor's contents).

Pure (pydantic only); imported by the schemas and routers of every domain.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, GetJsonSchemaHandler, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema as cs

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# The longest string any field accepts unless it sets a lower bound of its own (the longest
# real one, a product description, stays well below; the body limit bounds the total).
MAX_TEXT = 10_000
_BAD = re.compile("[\x00\ud800-\udfff]")


def check_text(value: str, *, max_length: int = MAX_TEXT) -> str:
    """`value`, or ValueError if it holds a NUL, a lone surrogate or is longer than allowed."""
    bad = _BAD.search(value)
    if bad is not None:
        what = "a NUL character" if bad.group() == "\x00" else "a lone surrogate (not valid Unicode)"
        raise ValueError(f"must not contain {what}")
    if len(value) > max_length:
        raise ValueError(f"must be at most {max_length} characters")
    return value


def check_int(value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("must be between -2^63 and 2^63-1")
    return value


def check_value(value: Any) -> Any:
    """Apply the checks to every string and integer inside `value` (JSON-like data)."""
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        check_int(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            check_value(k)
            check_value(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            check_value(v)
    elif isinstance(value, BaseModel):
        pass  # a nested model validated its own fields
    return value


# The checks, as the OpenAPI document states them (a request valid by the document passes).
TEXT_PATTERN = "^[^\\x00\\ud800-\\udfff]*$"


def document_text(schema: dict[str, Any]) -> None:
    """Add to a string schema (and strings nested in it) what `check_text` refuses."""
    if schema.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(schema):
        schema["pattern"] = TEXT_PATTERN
        schema.setdefault("maxLength", MAX_TEXT)
    elif schema.get("type") == "integer":
        schema.setdefault("minimum", INT64_MIN)
        schema.setdefault("maximum", INT64_MAX)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            document_text(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            document_text(schema[key])
    for sub in schema.get("properties", {}).values():
        document_text(sub)


def check_iso_datetime(value: Any) -> Any:
    """Only an RFC 3339 date-time string (what `format: date-time` says): pydantic alone would
    also take `0.5` or `1700000000` as Unix seconds."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-01-31T18:30:00Z")
    return value


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]")

Text = Annotated[str, AfterValidator(check_text)]
IsoDateTime = Annotated[datetime, BeforeValidator(check_iso_datetime)]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]


class Input(BaseModel):
    """Base of request bodies: no string or integer in them escapes the checks above."""

    @field_validator("*", mode="after")
    @classmethod
    def _checked(cls, value: Any) -> Any:
        return check_value(value)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: cs.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        for prop in schema.get("properties", {}).values():
            document_text(prop)
        return schema
