"""TOTP codes are accepted one step either side of now, and no further."""

from __future__ import annotations

import pyotp

from kirana.api.twofactor.service import matching_step


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
