"""The one keyset cursor codec, and the cursors of the orders and catalog listings built on it."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from kirana.api import cursors
from kirana.api.catalog import listing
from kirana.api.catalog.schemas import Sort
from kirana.api.errors import InvalidInput
from kirana.api.orders import service as orders

ID = uuid.UUID("6f1c2a9e-0b7d-4d61-9a55-1b2c3d4e5f60")
AT = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("value", [0, "x", [1, "two"], {"s": "newest", "k": None, "i": str(ID)}, "ä/+?"])
def test_a_value_survives_the_round_trip_in_url_safe_unpadded_text(value: Any) -> None:
    cursor = cursors.encode(value)
    assert cursors.decode(cursor) == value
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor


@pytest.mark.parametrize("cursor", ["", "!!!!", "a", _b64(b"not json"), _b64(b"\xff\xfe"), "ключ"])
def test_anything_but_base64_json_is_a_422(cursor: str) -> None:
    with pytest.raises(InvalidInput, match="malformed"):
        cursors.decode(cursor)


def test_an_order_cursor_holds_the_last_orders_time_and_id() -> None:
    assert orders.decode_cursor(orders.encode_cursor(AT, ID)) == (AT, ID)


@pytest.mark.parametrize(
    "value",
    [
        [AT.isoformat()],  # too short
        [AT.isoformat(), str(ID), 1],  # too long
        ["yesterday", str(ID)],
        [AT.isoformat(), "not-a-uuid"],
        [1, str(ID)],
        {"created": AT.isoformat()},
        "plain",
    ],
)
def test_an_order_cursor_holding_anything_else_is_a_422(value: Any) -> None:
    with pytest.raises(InvalidInput, match="malformed"):
        orders.decode_cursor(cursors.encode(value))


@pytest.mark.parametrize(
    ("sort", "key", "decoded"),
    [
        (Sort.newest, AT.isoformat(), AT),
        (Sort.price_asc, 0, 0),
        (Sort.price_desc, 2**63 - 1, 2**63 - 1),
        (Sort.title_asc, "Atta", "Atta"),
    ],
)
def test_a_listing_cursor_holds_the_sort_key_of_its_sort(sort: Sort, key: Any, decoded: Any) -> None:
    assert listing.decode_cursor(listing.encode_cursor(sort, key, ID), sort) == (decoded, ID)


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        (Sort.newest, "yesterday"),
        (Sort.newest, 5),
        (Sort.price_asc, "100"),
        (Sort.price_asc, True),
        (Sort.price_asc, -1),
        (Sort.price_desc, 2**63),
        (Sort.price_asc, 1.5),
        (Sort.title_asc, 7),
    ],
)
def test_a_listing_cursor_with_a_key_its_sort_cannot_have_is_a_422(sort: Sort, key: Any) -> None:
    with pytest.raises(InvalidInput, match="malformed"):
        listing.decode_cursor(listing.encode_cursor(sort, key, ID), sort)


@pytest.mark.parametrize("value", [{"k": 1, "i": str(ID)}, {"s": "newest", "k": None, "i": "x"}, [1, 2, 3]])
def test_a_listing_cursor_missing_its_fields_is_a_422(value: Any) -> None:
    with pytest.raises(InvalidInput, match="malformed"):
        listing.decode_cursor(cursors.encode(value), Sort.newest)


def test_a_listing_cursor_of_another_sort_says_so() -> None:
    cursor = listing.encode_cursor(Sort.price_asc, 100, ID)
    with pytest.raises(InvalidInput, match="sort=price_asc"):
        listing.decode_cursor(cursor, Sort.title_asc)


@pytest.mark.parametrize(
    ("kind", "key", "decoded"),
    [
        ("float", 2.25, 2.25),
        ("float", 3, 3.0),
        ("int", 7, 7),
        ("text", "", ""),
        ("datetime", AT.isoformat(), AT),
    ],
)
def test_a_keyset_cursor_reads_its_key_as_the_listing_says(
    kind: cursors.KeyKind, key: Any, decoded: Any
) -> None:
    """The codec search and the catalog share: search's relevance keys are floats."""
    assert cursors.decode_keyset(cursors.encode_keyset("relevance", key, ID), "relevance", kind) == (
        decoded,
        ID,
    )


@pytest.mark.parametrize(
    ("kind", "key"),
    [("float", True), ("float", "1.0"), ("float", None), ("int", 1.0), ("text", 1), ("datetime", None)],
)
def test_a_keyset_cursor_with_a_key_of_another_kind_is_a_422(kind: cursors.KeyKind, key: Any) -> None:
    with pytest.raises(InvalidInput, match="malformed"):
        cursors.decode_keyset(cursors.encode_keyset("relevance", key, ID), "relevance", kind)
