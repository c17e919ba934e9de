"""Settings validation: one readable line per bad variable, no placeholder secrets in production."""

from __future__ import annotations

import pytest

from kirana.api.settings import Settings, SettingsError, load_settings


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"KIRANA_DATABASE_URL": "mysql://x"},
            "KIRANA_DATABASE_URL: Value error, must be a postgresql:// URL",
        ),
        ({"KIRANA_REDIS_URL": "http://x"}, "KIRANA_REDIS_URL"),
        ({"KIRANA_PORT": "70000"}, "KIRANA_PORT"),
        ({"KIRANA_LOG_LEVEL": "LOUD"}, "KIRANA_LOG_LEVEL"),
        ({"KIRANA_ENVIRONMENT": "prod"}, "KIRANA_ENVIRONMENT"),
        ({"KIRANA_DRAIN_SECONDS": "-1"}, "KIRANA_DRAIN_SECONDS"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert expected in str(err.value)


@pytest.mark.parametrize("secret", ["changeme", "dev-secret-change-me", "short-but-real"])
def test_production_refuses_placeholder_or_short_secrets(secret: str) -> None:
    with pytest.raises(ValueError, match="KIRANA_SECRET_KEY"):
        Settings(environment="production", secret_key=secret)


def test_production_accepts_a_real_secret_and_development_the_default() -> None:
    assert Settings(environment="production", secret_key="x" * 40).environment == "production"
    assert Settings(environment="development").is_development


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIRANA_WORKERS", "4")
    monkeypatch.setenv("KIRANA_DATABASE_URL", "postgresql://u@h/db")
    s = load_settings()
    assert s.workers == 4 and s.database_url == "postgresql://u@h/db"


def test_grouped_settings_read_the_same_flat_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIRANA_DB_POOL_SIZE", "7")
    monkeypatch.setenv("KIRANA_DB_STATEMENT_TIMEOUT_MS", "900")
    monkeypatch.setenv("KIRANA_SMS_PROVIDER", "http")
    monkeypatch.setenv("KIRANA_SMS_GATEWAY_URL", "http://127.0.0.1:9/sms")
    monkeypatch.setenv("KIRANA_SMS_DAILY_CAP", "3")
    settings = load_settings(database_url="postgresql://db/kirana")
    assert settings.db.url == "postgresql://db/kirana"
    assert (settings.db.pool_size, settings.db.statement_timeout_ms) == (7, 900)
    assert settings.db.pool_size == settings.db_pool_size
    assert (settings.sms.provider, settings.sms.gateway_url) == ("http", "http://127.0.0.1:9/sms")
    assert settings.sms.daily_cap == 3


def test_razorpay_secrets_are_required_outside_development() -> None:
    real = {"razorpay_key_id": "rzp_live_x", "razorpay_key_secret": "s3cret", "razorpay_webhook_secret": "wh"}
    assert Settings(environment="development").payments_problem() is None  # the fake stands in
    assert Settings(environment="production", secret_key="x" * 40, **real).payments_problem() is None
    problem = Settings(environment="staging", secret_key="x" * 40, **real | {"razorpay_webhook_secret": ""})
    assert problem.payments_problem() == (
        "KIRANA_RAZORPAY_WEBHOOK_SECRET empty in staging: set Razorpay's keys and webhook secret"
    )
