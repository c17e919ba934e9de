"""Sync pull cursors: what parses and what is refused (422)."""

from __future__ import annotations

import pytest

from kirana.api.errors import InvalidInput
from kirana.api.sync import service as sync


@pytest.mark.parametrize(("cursor", "value"), [(None, 0), ("", 0), ("0", 0), ("42", 42), ("007", 7)])
def test_valid_cursors(cursor: str | None, value: int) -> None:
    assert sync.parse_cursor(cursor) == value


@pytest.mark.parametrize("cursor", ["-1", "1.0", "abc", "١٢", "9" * 20, " 1", "0x10"])
def test_malformed_cursors(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        sync.parse_cursor(cursor)
