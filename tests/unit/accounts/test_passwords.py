"""The password policy and Argon2id hashing."""

from __future__ import annotations

import pytest

from kirana.api.accounts import passwords


@pytest.mark.parametrize(
    ("password", "ok"),
    [("short", False), ("aaaaaaaaaaaa", False), ("asha@example.com", False), ("a-fine-password", True)],
)
def test_password_policy(password: str, ok: bool) -> None:
    assert (not passwords.problems(password, identifiers=("asha@example.com",))) is ok


def test_argon2id_round_trip() -> None:
    h = passwords.hash_password("a-fine-password")
    assert h.startswith("$argon2id$")
    assert passwords.verify(h, "a-fine-password") and not passwords.verify(h, "another-password")
