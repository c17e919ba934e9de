"""Keyset cursors: the opaque `cursor` / `next_cursor` strings of every paged list.

Used by the orders listing (`orders.service.list_orders`), the public catalog listing
(`catalog.listing`) and search (`search.service`). A cursor is a JSON value in URL-safe base64
without padding. A sorted listing's cursor (`encode_keyset`) holds the sort's name, the last
row's sort key and its id, and `decode_keyset` checks all three against what the listing
expects. Anything that does not decode, or holds a NUL, a lone surrogate or an integer beyond
int64 (`kirana.api.inputs`), is the same 422 everywhere. No HTTP.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any, Literal

from kirana.api import inputs
from kirana.api.errors import InvalidInput

MALFORMED = "the cursor is malformed; start again without one"


def malformed() -> InvalidInput:
    """The error for a cursor that decodes but does not hold what its listing wrote."""
    return InvalidInput(MALFORMED)


def encode(value: Any) -> str:
    """The cursor of a JSON-ready value."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Any:
    """The value a cursor holds; InvalidInput (422) unless it is base64 of JSON."""
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
        # What a cursor holds goes into queries: the same text and integer rules as any input.
        return inputs.check_value(json.loads(raw))
    except (ValueError, TypeError, binascii.Error):
        raise malformed() from None


KeyKind = Literal["int", "float", "text", "datetime"]


def encode_keyset(sort: str, key: Any, last_id: uuid.UUID | str) -> str:
    """The cursor after the row `last_id`, whose key under the sort named `sort` is `key`."""
    return encode({"s": sort, "k": key, "i": str(last_id)})


def decode_keyset(cursor: str, sort: str, kind: KeyKind) -> tuple[Any, uuid.UUID]:
    """The (sort key, id) an `encode_keyset` cursor of `sort` holds, the key read as `kind`
    (an int is a non-negative int64; a datetime ISO 8601). InvalidInput (422) for anything
    else, with its own message for a cursor of another sort."""
    data = decode(cursor)
    try:
        key, last_id, cursor_sort = data["k"], uuid.UUID(data["i"]), data["s"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise malformed() from None
    if cursor_sort != sort:
        raise InvalidInput(f"this cursor belongs to sort={cursor_sort}; keep the sort while paging")
    try:
        return _key(key, kind), last_id
    except (TypeError, ValueError):
        raise malformed() from None


def _key(key: Any, kind: KeyKind) -> Any:
    if kind == "datetime":
        return datetime.fromisoformat(key)
    if kind == "text" and isinstance(key, str):
        return key
    if isinstance(key, bool) or not isinstance(key, int | float):
        raise ValueError(key)
    if kind == "float":
        return float(key)
    if kind == "int" and isinstance(key, int) and 0 <= key < 2**63:
        return key
    raise ValueError(key)
