"""`python -m kirana.api.devrazorpay`: the fake Razorpay as its own process (compose.yaml)."""

from __future__ import annotations

import pytest

from kirana.api.devrazorpay.__main__ import parse_args
from kirana.api.devrazorpay.server import DEV_KEY_ID


def test_arguments_default_to_the_development_account_and_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "FAKE_RAZORPAY_HOST",
        "FAKE_RAZORPAY_PORT",
        "FAKE_RAZORPAY_WEBHOOK_URL",
        "KIRANA_RAZORPAY_KEY_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    args = parse_args([])
    assert (args.host, args.port, args.webhook_url, args.key_id) == ("127.0.0.1", 9000, None, DEV_KEY_ID)


def test_arguments_come_from_the_flags_or_the_shops_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIRANA_RAZORPAY_KEY_ID", "rzp_test_compose")
    args = parse_args(
        ["--host", "0.0.0.0", "--port", "9100", "--webhook-url", "http://api:8000/v1/webhooks/razorpay"]
    )
    assert (args.host, args.port, args.key_id) == ("0.0.0.0", 9100, "rzp_test_compose")
    assert args.webhook_url == "http://api:8000/v1/webhooks/razorpay"
