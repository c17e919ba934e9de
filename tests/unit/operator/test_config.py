"""The operator's settings from its environment: defaults, overrides, and one line per bad variable."""

from __future__ import annotations

import pytest

from kirana.operator.config import ConfigError, OperatorConfig


def test_defaults() -> None:
    assert OperatorConfig.from_env({}) == OperatorConfig(
        watch_server_timeout=270, peering_lifetime=60, metrics_port=8080, reconcile_threads=4
    )


def test_overrides_and_blank_values() -> None:
    env = {"KIRANA_OPERATOR_METRICS_PORT": "9090", "KIRANA_OPERATOR_PEERING_LIFETIME": " ", "PATH": "/bin"}
    config = OperatorConfig.from_env(env)
    assert config.metrics_port == 9090 and config.peering_lifetime == 60


def test_every_bad_variable_is_named_on_its_own_line() -> None:
    env = {
        "KIRANA_OPERATOR_METRICS_PORT": "80a",
        "KIRANA_OPERATOR_WATCH_SERVER_TIMEOUT": "5",
        "KIRANA_OPERATOR_PEERING_LIFETIME": "30",
    }
    with pytest.raises(ConfigError) as exc:
        OperatorConfig.from_env(env)
    assert str(exc.value).splitlines() == [
        "KIRANA_OPERATOR_WATCH_SERVER_TIMEOUT=5: must be between 10 and 3600",
        "KIRANA_OPERATOR_METRICS_PORT='80a': not a whole number",
    ]


def test_the_object_refuses_bad_values_too() -> None:
    with pytest.raises(ConfigError, match="KIRANA_OPERATOR_RECONCILE_THREADS=0"):
        OperatorConfig(reconcile_threads=0)
