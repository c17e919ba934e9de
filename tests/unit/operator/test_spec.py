"""The CRD's OpenAPI schema and the pydantic spec model describe the same fields with the same
defaults, and the generated workload manifests carry the safety settings the issue asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from kirana.operator.plan import resources as res
from kirana.operator.plan.model import Owner
from kirana.operator.spec import (
    ShopBackupSpec,
    ShopBackupStatus,
    ShopReleaseSpec,
    ShopReleaseStatus,
    parse_spec,
)

CRD = (
    Path(__file__).resolve().parents[3]
    / "charts"
    / "kirana-operator"
    / "crds"
    / "shopreleases.kirana.dev.yaml"
)
SCHEMA = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def model_for(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def mismatches(model: type[BaseModel], schema: dict[str, Any], path: str) -> list[str]:
    out = []
    props = schema.get("properties", {})
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    for alias in sorted(set(fields) ^ set(props)):
        out.append(f"{path}.{alias}: only in {'the model' if alias in fields else 'the CRD'}")
    for alias in sorted(set(fields) & set(props)):
        f, p = fields[alias], props[alias]
        sub = model_for(f.annotation)
        if sub is not None and p.get("type") == "object" and "properties" in p:
            out += mismatches(sub, p, f"{path}.{alias}")
        elif "default" in p and p["default"] != {} and not f.is_required():
            default = f.get_default(call_default_factory=True)
            default = getattr(default, "value", default)
            if default != p["default"]:
                out.append(f"{path}.{alias}: default {default!r} in the model, {p['default']!r} in the CRD")
    return out


def test_spec_schema_matches_the_model() -> None:
    assert mismatches(ShopReleaseSpec, SCHEMA["properties"]["spec"], "spec") == []


def test_status_schema_matches_the_model() -> None:
    assert mismatches(ShopReleaseStatus, SCHEMA["properties"]["status"], "status") == []


def test_shopbackup_schema_matches_the_model() -> None:
    crd = yaml.safe_load((CRD.parent / "shopbackups.kirana.dev.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    assert mismatches(ShopBackupSpec, schema["spec"], "spec") == []
    assert mismatches(ShopBackupStatus, schema["status"], "status") == []


def test_printer_columns() -> None:
    version = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]
    names = [c["name"] for c in version["additionalPrinterColumns"] if c.get("priority", 0) == 0]
    assert names == ["Phase", "Version", "Ready", "Last Backup", "Age"]


OWNER = Owner(name="shop", namespace="prod", uid="u-1")
SPEC = parse_spec({"version": "1.2.0", "config": {"secretName": "env", "configMapName": "cfg"}})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("spec", "strategy", "rollingUpdate", "maxUnavailable"), 0),
        (("spec", "strategy", "rollingUpdate", "maxSurge"), 1),
        (("spec", "template", "spec", "containers", 0, "readinessProbe", "httpGet", "path"), "/readyz"),
        (("spec", "template", "spec", "containers", 0, "livenessProbe", "httpGet", "path"), "/livez"),
        (("spec", "template", "spec", "containers", 0, "lifecycle", "preStop", "sleep", "seconds"), 10),
        (("spec", "template", "spec", "terminationGracePeriodSeconds"), 40),
        (("spec", "template", "spec", "containers", 0, "envFrom", 1, "secretRef", "name"), "env"),
        (("spec", "template", "spec", "containers", 0, "envFrom", 0, "configMapRef", "name"), "cfg"),
        (("metadata", "ownerReferences", 0, "controller"), True),
        (("spec", "template", "spec", "securityContext", "runAsNonRoot"), True),
    ],
)
def test_api_deployment(path: tuple[Any, ...], expected: Any) -> None:
    node: Any = res.api_deployment(OWNER, SPEC, "kirana-api:1.2.0", "1.2.0")
    for key in path:
        node = node[key]
    assert node == expected


def test_app_pods_leave_a_lost_node_after_their_toleration() -> None:
    spec = parse_spec(
        {"version": "1.2.0", "config": {"secretName": "env"}, "workers": {"nodeLossTolerationSeconds": 90}}
    )

    def tolerations(deployment: dict[str, Any]) -> dict[str, tuple[str, int]]:
        return {
            t["key"]: (t["effect"], t["tolerationSeconds"])
            for t in deployment["spec"]["template"]["spec"]["tolerations"]
        }

    api = tolerations(res.api_deployment(OWNER, spec, "kirana-api:1.2.0", "1.2.0"))
    workers = tolerations(res.workers_deployment(OWNER, spec, "kirana-api:1.2.0", "1.2.0"))
    assert api == {
        "node.kubernetes.io/not-ready": ("NoExecute", 30),
        "node.kubernetes.io/unreachable": ("NoExecute", 30),
    }
    assert workers == {
        "node.kubernetes.io/not-ready": ("NoExecute", 90),
        "node.kubernetes.io/unreachable": ("NoExecute", 90),
    }


def test_jobs_have_deterministic_names_and_run_once() -> None:
    args = dict(
        step="migrate",
        key="abcd1234",
        image="i",
        version="1",
        args=["db", "migrate", "--json"],
        timeout_seconds=60,
    )
    a = res.db_job(OWNER, SPEC, **args)  # type: ignore[arg-type]
    b = res.db_job(OWNER, SPEC, **args)  # type: ignore[arg-type]
    assert a == b and a["metadata"]["name"] == "shop-migrate-abcd1234"
    assert a["spec"]["backoffLimit"] == 0 and a["spec"]["activeDeadlineSeconds"] == 60
    assert a["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert a["spec"]["template"]["spec"]["containers"][0]["command"] == ["kirana"]


def test_pod_disruption_budget_keeps_all_but_one() -> None:
    pdb = res.disruption_budget(OWNER, "api", "shop-api")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
