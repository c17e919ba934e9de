"""The alert rules in monitoring/rules: promtool accepts them and their unit tests pass, and every
alert carries what an on-call engineer needs (severity, summary, description, a runbook page that
exists), keeps the labels routing depends on, and has a promtool case that fires and one that
does not.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.monitoring.conftest import CATEGORIES, MONITORING, REPO, alerts, rule_test_files, run, tool

RUNBOOK_URL = re.compile(r"^https://kirana\.dev/(docs/runbooks/(Kirana[A-Za-z0-9]+)\.md)$")


def test_promtool_check_rules() -> None:
    out = run(tool("promtool"), "check", "rules", *sorted(str(p) for p in MONITORING.glob("rules/*.yaml")))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("test_file", rule_test_files(), ids=lambda p: p.rsplit("/", 1)[-1])
def test_promtool_unit_tests(test_file: str) -> None:
    out = run(tool("promtool"), "test", "rules", test_file)
    assert out.returncode == 0, out.stdout + out.stderr


def test_at_least_27_alerts_in_the_8_categories() -> None:
    per_category = Counter(a.body["labels"]["category"] for a in alerts())
    assert set(per_category) == set(CATEGORIES), per_category
    assert sum(per_category.values()) >= 27


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a.name)
def test_alert_is_complete(alert) -> None:  # type: ignore[no-untyped-def]
    body = alert.body
    assert re.fullmatch(r"Kirana(?:[A-Z][a-z0-9]*)+", alert.name), "CamelCase, Kirana prefix"
    labels, notes = body["labels"], body["annotations"]
    assert labels["severity"] in {"critical", "warning", "info"}
    assert labels["category"] == alert.file.stem, "one file per category"
    assert labels["team"] in {"platform", "payments", "business"}
    assert notes["summary"] and notes["description"]
    match = RUNBOOK_URL.match(notes["runbook_url"])
    assert match and match.group(2) == alert.name, notes["runbook_url"]
    page = (REPO / match.group(1)).read_text()
    assert page.startswith(f"# {alert.name}\n")
    assert "## Check" in page and "## Do" in page


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a.name)
def test_aggregations_keep_namespace(alert) -> None:  # type: ignore[no-untyped-def]
    """An AlertmanagerConfig only receives alerts labelled with its namespace."""
    for clause in re.findall(r"\bby\s*\(([^)]*)\)", alert.body["expr"]):
        assert "namespace" in [c.strip() for c in clause.split(",")], clause
    assert not re.search(r"\bwithout\s*\([^)]*namespace", alert.body["expr"])


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    fires, quiet = set(), set()
    for path in rule_test_files():
        for case in yaml.safe_load(Path(path).read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {a.name for a in alerts()}
    assert names - fires == set(), "alerts without a firing case"
    # The Watchdog fires by design, always: it has no quiet case.
    assert names - quiet == {"KiranaWatchdog"}, "alerts without a case where they stay quiet"


def test_status_matchers_match_exported_codes() -> None:
    """kirana_http_requests_total exports status as the three-digit code ("503"), never "5xx"."""
    for alert in alerts():
        for matcher in re.findall(r'status=~?"([^"]*)"', alert.body["expr"]):
            assert re.fullmatch(matcher, "503") or re.fullmatch(matcher, "201"), matcher
