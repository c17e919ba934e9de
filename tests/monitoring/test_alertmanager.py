"""monitoring/alertmanager: amtool accepts the configuration, every route has a case in
routes_test.yaml that reaches exactly the receivers it names, and the configuration keeps its
promises (at least 7 receivers, secrets by file, a business-hours interval, both inhibitions).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.monitoring.conftest import MONITORING, alerts, run, tool

CONFIG = MONITORING / "alertmanager" / "alertmanager.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load((MONITORING / "alertmanager" / "routes_test.yaml").read_text())


def _config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


def test_amtool_check_config() -> None:
    out = run(tool("amtool"), "check-config", str(CONFIG))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["labels"]["alertname"])
def test_route(case: dict[str, Any]) -> None:
    labels = [f"{k}={v}" for k, v in case["labels"].items()]
    out = run(
        tool("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        "--verify.receivers=" + ",".join(case["receivers"]),
        *labels,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_wrong_receiver_is_refused() -> None:
    """The route check can fail: a case naming the wrong receiver exits non-zero."""
    out = run(
        tool("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        "--verify.receivers=slack-oncall",
        "alertname=KiranaRedisDown",
        "severity=critical",
    )
    assert out.returncode != 0


def test_every_route_has_a_case() -> None:
    """Each child route is the first match of at least one case (by its receiver and matchers)."""
    routes = _config()["route"]["routes"]
    covered = set()
    for case in CASES:
        labels = case["labels"]
        for i, route in enumerate(routes):
            if all(_matches(m, labels) for m in route["matchers"]):
                covered.add(i)
                if not route.get("continue"):
                    break
    assert covered == set(range(len(routes))), f"routes without a case: {set(range(len(routes))) - covered}"
    assert any(c["receivers"] == [_config()["route"]["receiver"]] for c in CASES), "default route"


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    name, op, value = re.fullmatch(r'(\w+)(=~|!=|=)"(.*)"', matcher).groups()  # type: ignore[union-attr]
    got = labels.get(name, "")
    return {"=": got == value, "!=": got != value, "=~": re.fullmatch(value, got) is not None}[op]


def test_receivers_secrets_and_intervals() -> None:
    config = _config()
    assert len(config["receivers"]) >= 7
    text = CONFIG.read_text()
    for kind in ("api_url:", "routing_key:", "service_key:", "auth_password:"):
        assert kind not in text, f"{kind} must be a *_file reference"
    assert [i["name"] for i in config["time_intervals"]] == ["business-hours"]
    inhibit = config["inhibit_rules"]
    assert {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity="warning"'],
        "equal": ["alertname", "namespace"],
    } in inhibit
    assert any(
        r["source_matchers"] == ['alertname="KiranaDatabaseDown"'] and r["equal"] == ["namespace"]
        for r in inhibit
    )


def test_routed_alerts_exist_in_the_rules() -> None:
    names = {a.name for a in alerts()}
    for case in CASES:
        assert case["labels"]["alertname"] in names
