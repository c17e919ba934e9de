"""charts/kirana-operator rendered by the pinned helm: what Secret access its RBAC grants.

The operator may `get` a Secret by name to hold a release that names a missing one. Watching
named namespaces, that grant is per namespace (a RoleBinding of the ClusterRole); watching the
whole cluster it would reach every Secret, so `rbac.checkSecrets=auto` (the default) grants it
only in the first case. tests/e2e/test_operator_chart.py checks the namespaced grant on the
testbed with SelfSubjectAccessReviews.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts import helm_template

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kirana-operator"


def render(*args: str) -> subprocess.CompletedProcess[str]:
    return helm_template("kirana-operator", "op", "kirana-system", *args)


def secret_rules(*args: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The rules on Secrets of the ClusterRoles, and the kinds that bind them."""
    proc = render(*args)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    rules = [
        rule
        for d in docs
        if d["kind"] == "ClusterRole"
        for rule in d.get("rules", [])
        if "secrets" in rule.get("resources", [])
    ]
    bindings = sorted({d["kind"] for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")})
    return rules, bindings


def test_watching_every_namespace_grants_no_secret_access_by_default() -> None:
    rules, bindings = secret_rules()
    assert rules == []
    assert "ClusterRoleBinding" in bindings


def test_watching_named_namespaces_grants_get_there_only() -> None:
    rules, bindings = secret_rules("--set", "watchNamespaces={shop-prod,shop-staging}")
    assert rules == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert "RoleBinding" in bindings


@pytest.mark.parametrize(
    ("args", "granted"),
    [
        (("--set", "rbac.checkSecrets=true"), True),  # cluster wide, accepted knowingly
        (("--set", "rbac.checkSecrets=false", "--set", "watchNamespaces={shop-prod}"), False),
    ],
)
def test_an_explicit_choice_wins(args: tuple[str, ...], granted: bool) -> None:
    rules, _ = secret_rules(*args)
    assert bool(rules) is granted
    assert all(rule["verbs"] == ["get"] for rule in rules)  # never list or watch


def test_a_value_other_than_auto_true_or_false_is_refused() -> None:
    proc = render("--set", "rbac.checkSecrets=sometimes")
    assert proc.returncode != 0
    assert "checkSecrets" in proc.stderr
