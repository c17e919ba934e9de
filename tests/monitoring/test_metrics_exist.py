"""Every `kirana_` metric a rule (or dashboard) names is exported by a real process: the API and
the worker of a real `kirana run` (embedded PostgreSQL and Redis), and the operator's metrics
registry. A rule on a metric nobody exports never fires, so this fails instead. The e2e test
`test_metrics_then_deleting_the_release_removes_everything_it_owns` checks the operator's names
again on a running operator that has reconciled a release.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.monitoring.conftest import MONITORING, Shop

SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}


def named_metrics() -> set[str]:
    """`kirana_*` names in rule expressions and dashboard queries (recording rules use `kirana:`)."""
    text = "\n".join(p.read_text() for p in MONITORING.glob("rules/*.yaml"))
    text += "\n".join(p.read_text() for p in MONITORING.glob("dashboards/**/*.json"))
    return set(re.findall(r"\bkirana_[a-z0-9_]+\b", text))


def exported(exposition: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        names.update(family.name + s for s in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.mark.xdist_group("run")
def test_every_metric_named_by_a_rule_is_exported(shop: Shop) -> None:
    api, worker = shop.api, shop.worker
    httpx.get(api + "/v1/products")  # one answered request, so the HTTP families have samples
    deadline = time.monotonic() + 30  # the worker's probe sets its gauges within seconds
    while "kirana_dependency_up" not in httpx.get(worker + "/metrics").text and time.monotonic() < deadline:
        time.sleep(0.5)
    operator = subprocess.run(
        [
            sys.executable,
            "-c",
            "import kirana.operator.metrics, prometheus_client as p; print(p.generate_latest().decode())",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert httpx.get(api + "/metrics").status_code == 404  # not on the API's (public) port
    found = exported(httpx.get(shop.api_metrics + "/metrics").text)
    found |= exported(httpx.get(worker + "/metrics").text)
    found |= exported(operator)
    named = named_metrics()
    assert len(named) >= 19
    assert named - found == set(), "named by a rule or dashboard but exported by nobody"


@pytest.mark.xdist_group("run")
def test_worker_reports_both_dependencies_up(shop: Shop) -> None:
    worker = shop.worker
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ups = {
            s.labels["dependency"]: s.value
            for f in text_string_to_metric_families(httpx.get(worker + "/metrics").text)
            if f.name == "kirana_dependency_up"
            for s in f.samples
        }
        if ups == {"postgres": 1.0, "redis": 1.0}:
            return
        time.sleep(0.5)
    raise AssertionError(f"kirana_dependency_up never reported both up: {ups}")


def test_unexported_name_is_caught() -> None:
    """The check above can fail: a name missing from an exposition is reported."""
    assert "kirana_nope_total" not in exported("# TYPE kirana_yes counter\nkirana_yes_total 1\n")
    assert "kirana_yes_total" in exported("# TYPE kirana_yes counter\nkirana_yes_total 1\n")
