"""Leaderboard keys: periods and scopes an earning counts in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kirana.api.loyalty import boards


def test_keys_for_an_earning() -> None:
    at = datetime(2026, 12, 31, 23, tzinfo=UTC)  # ISO week 53 of 2026
    assert boards.keys_for(at, "blr-1", "bengaluru") == [
        "kirana:lb:week:2026-W53:all",
        "kirana:lb:week:2026-W53:store:blr-1",
        "kirana:lb:week:2026-W53:city:bengaluru",
        "kirana:lb:month:2026-12:all",
        "kirana:lb:month:2026-12:store:blr-1",
        "kirana:lb:month:2026-12:city:bengaluru",
        "kirana:lb:all:all",
        "kirana:lb:all:store:blr-1",
        "kirana:lb:all:city:bengaluru",
    ]
    assert len(boards.keys_for(at, None, None)) == 3


@pytest.mark.parametrize(
    ("scope", "ok"),
    [
        ("all", True),
        ("store:blr-1", True),
        ("city:new-delhi", True),
        ("city:", False),
        ("store:A", False),
        ("x", False),
    ],
)
def test_scope_names(scope: str, ok: bool) -> None:
    assert bool(boards.SCOPE_RE.match(scope)) is ok


def test_period_keys() -> None:
    at = datetime(2027, 1, 1, tzinfo=UTC)
    assert boards.period_key("week", at) == "week:2026-W53"
    assert boards.period_key("month", at) == "month:2027-01"
    assert boards.period_key("all", at) == "all"
