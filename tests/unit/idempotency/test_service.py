"""Idempotency keys and request fingerprints: validation without a database."""

from __future__ import annotations

import pytest

from kirana.api.idempotency import service as idempotency


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
        assert idempotency.validate_key(key) == key
    else:
        with pytest.raises(idempotency.KeyMalformed):
            idempotency.validate_key(key)


def test_fingerprint_ignores_key_order_but_not_values_or_route() -> None:
    a = idempotency.fingerprint(method="POST", path="/v1/orders", body={"a": 1, "b": [1, 2]})
    assert a == idempotency.fingerprint(method="POST", path="/v1/orders", body={"b": [1, 2], "a": 1})
    assert a != idempotency.fingerprint(method="POST", path="/v1/orders", body={"a": 2, "b": [1, 2]})
    assert a != idempotency.fingerprint(method="POST", path="/v1/checkout", body={"a": 1, "b": [1, 2]})
    assert a != idempotency.fingerprint(method="PUT", path="/v1/orders", body={"a": 1, "b": [1, 2]})
