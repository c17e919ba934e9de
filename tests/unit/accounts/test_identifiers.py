"""Phone and e-mail identifiers: Indian numbers normalised to E.164, everything else refused."""

from __future__ import annotations

import pytest

from kirana.api.accounts import identifiers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("9845012345", "+919845012345"),
        ("098450-12345", "+919845012345"),
        ("+91 98450 12345", "+919845012345"),
        ("919845012345", "+919845012345"),
        ("00919845012345", "+919845012345"),
    ],
)
def test_phone_normalisation(raw: str, expected: str) -> None:
    assert identifiers.normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "+14155550100", "5845012345", "+9198450123456"])
def test_non_indian_or_bad_numbers_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        identifiers.normalize_phone(raw)


def test_classify() -> None:
    assert identifiers.classify(" Asha@Example.COM ") == ("email", "asha@example.com")
    assert identifiers.classify("98450 12345") == ("phone", "+919845012345")
