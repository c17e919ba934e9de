"""Pure helpers of accounts and two-factor: identifiers, password policy, TOTP steps, the
audit hash chain, rate-limit subject keys."""

from __future__ import annotations

import copy

import pyotp
import pytest

from kirana.api.accounts import identifiers, passwords
from kirana.api.audit import chain
from kirana.api.twofactor.service import matching_step


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


def test_totp_window_is_plus_minus_one_step() -> None:
    secret = pyotp.random_base32()
    now = 1_800_000_000.0
    step = int(now // 30)
    totp = pyotp.TOTP(secret)
    assert matching_step(secret, totp.at(now), now=now) == step
    assert matching_step(secret, totp.at(now - 30), now=now) == step - 1
    assert matching_step(secret, totp.at(now + 30), now=now) == step + 1
    assert matching_step(secret, totp.at(now - 60), now=now) is None
    assert matching_step(secret, "12345", now=now) is None


def _chain(n: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    prev = chain.GENESIS
    for i in range(1, n + 1):
        row: dict[str, object] = {
            "id": i,
            "seq": i,
            "action": "auth.login",
            "outcome": "ok",
            "after": {"n": i},
        }
        row["prev_hash"] = prev
        row["hash"] = prev = chain.entry_hash(prev, row)
        rows.append(row)
    return rows


def test_chain_verifies_and_finds_each_kind_of_tampering() -> None:
    rows = _chain(5)
    assert chain.verify(rows).ok and chain.verify(rows).head_seq == 5
    edited = copy.deepcopy(rows)
    edited[2]["after"] = {"n": 99}
    assert [f.seq for f in chain.verify(edited).findings] == [3]
    deleted = rows[:2] + rows[3:]
    assert {f.seq for f in chain.verify(deleted).findings} == {4}
    inserted = copy.deepcopy(rows[:3])
    fake: dict[str, object] = {
        "id": 99,
        "seq": 4,
        "action": "x",
        "outcome": "ok",
        "prev_hash": rows[2]["hash"],
    }
    fake["hash"] = chain.entry_hash(str(rows[2]["hash"]), fake)  # a forger who knows the algorithm...
    inserted += [fake] + copy.deepcopy(rows[3:])
    # ...still breaks the link to the next genuine entry and the seq order.
    assert not chain.verify(inserted).ok
