"""Idempotency keys, request fingerprints and sync cursors: validation without a database."""

from __future__ import annotations

import pytest

from kirana.api.errors import InvalidInput
from kirana.api.idempotency import service as idem
from kirana.api.sync import service as sync


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("3f1c2a9e-0b7d-4d61-9a55-1b2c3d4e5f60", True),
        ("order:retry.1_x", True),
        ("short", False),
        ("", False),
        ("has space in it", False),
        ("-leading-dash", False),
        ("k" * 255, True),
        ("k" * 256, False),
        ("ключ-ключ-ключ", False),
    ],
)
def test_key_format(key: str, ok: bool) -> None:
    if ok:
        assert idem.validate_key(key) == key
    else:
        with pytest.raises(idem.KeyMalformed):
            idem.validate_key(key)


def test_fingerprint_ignores_key_order_but_not_values_or_route() -> None:
    a = idem.fingerprint(method="POST", path="/v1/orders", body={"a": 1, "b": [1, 2]})
    assert a == idem.fingerprint(method="POST", path="/v1/orders", body={"b": [1, 2], "a": 1})
    assert a != idem.fingerprint(method="POST", path="/v1/orders", body={"a": 2, "b": [1, 2]})
    assert a != idem.fingerprint(method="POST", path="/v1/checkout", body={"a": 1, "b": [1, 2]})
    assert a != idem.fingerprint(method="PUT", path="/v1/orders", body={"a": 1, "b": [1, 2]})


@pytest.mark.parametrize(("cursor", "value"), [(None, 0), ("", 0), ("0", 0), ("42", 42), ("007", 7)])
def test_valid_cursors(cursor: str | None, value: int) -> None:
    assert sync.parse_cursor(cursor) == value


@pytest.mark.parametrize("cursor", ["-1", "1.0", "abc", "١٢", "9" * 20, " 1", "0x10"])
def test_malformed_cursors(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        sync.parse_cursor(cursor)
