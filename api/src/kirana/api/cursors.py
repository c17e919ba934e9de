"""Keyset cursors: the opaque `cursor` / `next_cursor` strings of every paged list.

Used by the orders listing (`orders.service.list_orders`) and the public catalog listing
(`catalog.listing`). A cursor is a JSON value in URL-safe base64 without padding; what the
value holds (the last row's sort key and id) is each listing's business, and so is checking
it. Anything that does not decode, or holds a NUL, a lone surrogate or an integer beyond
int64 (`kirana.api.inputs`), is the same 422 everywhere. No HTTP.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

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
