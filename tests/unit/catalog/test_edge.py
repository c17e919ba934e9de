"""ETag matching for the listing and product pages (RFC 9110 weak comparison of If-None-Match)."""

from __future__ import annotations

import pytest

from kirana.api.conditional import etag_matches

ETAG = '"abc123"'


@pytest.mark.parametrize(
    ("if_none_match", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc123"', True),
        ('W/"abc123"', True),  # weak comparison: a weak validator of the same tag matches
        ('"other"', False),
        ('"other", "abc123"', True),
        ('"other",W/"abc123"', True),
        ('  "abc123"  ', True),
        ("*", True),
        ('"other", *', True),
        ("abc123", False),  # unquoted is not the same tag
        ('"ABC123"', False),  # tags compare case-sensitively
        ('"abc1234"', False),
    ],
)
def test_if_none_match_against_our_strong_etag(if_none_match: str | None, matches: bool) -> None:
    assert etag_matches(if_none_match, ETAG) is matches
