"""charts/kirana on the testbed, with the operator from charts/kirana-operator (its pod's process
run here as its ServiceAccount, see test_operator_chart.py):

- `helm install` gives a Ready ShopRelease, and the API server accepts every monitoring object
  (the prometheus-operator CRDs installed, so their schemas check the PodMonitors, PrometheusRules
  and AlertmanagerConfig); `helm upgrade --set version=...` drives the operator's release flow
  (backup, migrate, roll out); `helm rollback` returns to the previous version.
- The health gate end to end: a real Prometheus (`make tools`) scrapes a real `kirana run` with
  monitoring/rules loaded; the chart's gate asks it whether a critical alert fires in the
  namespace. Redis stopped during the bake fires KiranaRedisDown, the gate fails, and the operator
  rolls back and restores the pre-upgrade backup (failure policy Restore).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.monitoring.conftest import start_shop
from tests.monitoring.servers import Servers, Webhooks, wait_for

from . import k8s
from .jobrunner import EXTERNAL, REPO, Images, Shop
from .test_operator_chart import Chart, chart, helm, wait_available

__all__ = ["chart"]  # the operator chart's fixture, used here too

CHART = REPO / "charts" / "kirana"
KUBECTL = REPO / ".local" / "bin" / "kubectl"
NAME = "shop"
MONITORING_CRDS = ("podmonitors", "servicemonitors", "prometheusrules", "alertmanagerconfigs")
# The gate: no critical alert of monitoring/rules fires in the release's namespace.
GATE_QUERY = 'count(ALERTS{alertstate="firing", severity="critical", namespace="{namespace}"})'


def _versions() -> dict[str, str]:
    lines = (REPO / "testbed" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


@pytest.fixture(scope="session")
def monitoring_crds(kubeconfig: Path) -> None:
    """The prometheus-operator CRDs (the version `make tools` validates against), applied."""
    version = _versions()["PROMETHEUS_OPERATOR_VERSION"]
    module = f"github.com/prometheus-operator/prometheus-operator@{version}"
    info = subprocess.run(
        ["go", "mod", "download", "-json", module], capture_output=True, text=True, check=True
    )
    crds = Path(json.loads(info.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    files = [str(crds / f"monitoring.coreos.com_{kind}.yaml") for kind in MONITORING_CRDS]
    kubectl = [str(KUBECTL), "--kubeconfig", str(kubeconfig)]
    args = [a for f in files for a in ("-f", f)]
    subprocess.run(
        [*kubectl, "apply", "--server-side", "--force-conflicts", *args], check=True, capture_output=True
    )
    names = [f"crd/{kind}.monitoring.coreos.com" for kind in MONITORING_CRDS]
    subprocess.run([*kubectl, "wait", "--for=condition=Established", "--timeout=60s", *names], check=True)


def values(tmp_path: Path, chart: Chart, **extra: Any) -> Path:
    """The chart's values for the testbed world: its Secret and backup claim, Jobs run locally."""
    doc: dict[str, Any] = {
        "version": "1.0.0",
        "config": {"secretName": f"{NAME}-env"},
        "jobs": {"podLabels": dict(EXTERNAL)},
        "backup": {
            "schedule": "",
            "onDelete": False,
            "pvc": {"claimName": f"{NAME}-backups", "create": False},
        },
        "rollout": {"bakeSeconds": 2, "progressDeadlineSeconds": 60},
        "healthGate": {"enabled": False},
        "monitoring": {
            "labels": {"release": "kube-prometheus-stack"},
            "operator": {"namespace": chart.namespace},
        },
    }
    for key, value in extra.items():
        doc[key] = {**doc[key], **value} if isinstance(value, dict) and key in doc else value
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def operator(chart: Chart, shop_world: Shop, tmp_path: Path) -> Shop:
    """The operator chart's pod, run here as its ServiceAccount, watching the shop's namespace."""
    wait_available(chart)
    sa_config = chart.service_account_kubeconfig(tmp_path / "sa.kubeconfig")
    shop_world.operator = chart.operator(sa_config, tmp_path, chart.pod_names()[0])
    shop_world.operator.start()
    return shop_world


def test_install_upgrade_rollback(
    operator: Shop, chart: Chart, kubeconfig: Path, images: Images, monitoring_crds: None, tmp_path: Path
) -> None:
    shop = operator
    images.env["kirana-api:1.1.0"] = images.env["kirana-api:1.0.0"]  # a release without a migration
    ns = shop.namespace
    helm(kubeconfig, "install", NAME, str(CHART), "--namespace", ns, "-f", str(values(tmp_path, chart)))
    status = shop.wait_phase(NAME, "Ready", timeout=120)["status"]
    assert status["currentVersion"] == "1.0.0"
    assert shop.runner.commands() == ["db migrate"]
    assert shop.deployment_images(NAME) == {"api": "kirana-api:1.0.0", "workers": "kirana-api:1.0.0"}

    custom = client.CustomObjectsApi(shop.api)

    def listed(plural: str, version: str = "v1") -> list[dict[str, Any]]:
        items = custom.list_namespaced_custom_object("monitoring.coreos.com", version, ns, plural)["items"]
        assert all(i["metadata"]["labels"]["release"] == "kube-prometheus-stack" for i in items)
        return list(items)

    assert sorted(m["metadata"]["name"] for m in listed("podmonitors")) == ["shop-api", "shop-workers"]
    assert len(listed("servicemonitors")) == 1
    assert len(listed("prometheusrules")) == len(list((REPO / "monitoring" / "rules").glob("*.yaml")))
    [amc] = listed("alertmanagerconfigs", "v1alpha1")
    assert len(amc["spec"]["receivers"]) >= 7
    # The pods the PodMonitors select carry the metrics port they scrape.
    pods = client.CoreV1Api(shop.api).list_namespaced_pod(
        ns, label_selector="app.kubernetes.io/component=api"
    )
    assert pods.items and all(
        "metrics" in {p.name for p in pod.spec.containers[0].ports or []} for pod in pods.items
    )

    helm(
        kubeconfig, "upgrade", NAME, str(CHART), "--namespace", ns, "--reuse-values", "--set", "version=1.1.0"
    )
    status = shop.wait_phase(NAME, "Ready", timeout=180)["status"]
    assert status["currentVersion"] == "1.1.0"
    assert shop.runner.commands() == ["db migrate", "db backup", "db migrate"]
    assert shop.deployment_images(NAME) == {"api": "kirana-api:1.1.0", "workers": "kirana-api:1.1.0"}

    helm(kubeconfig, "rollback", NAME, "1", "--namespace", ns)
    assert shop.get(NAME)["spec"]["version"] == "1.0.0"
    status = shop.wait_phase(NAME, "Ready", timeout=180)["status"]
    assert status["currentVersion"] == "1.0.0"
    # Back to a version whose schema is the current one: backed up, nothing to migrate.
    assert shop.runner.commands() == ["db migrate", "db backup", "db migrate", "db backup"]
    assert shop.deployment_images(NAME) == {"api": "kirana-api:1.0.0", "workers": "kirana-api:1.0.0"}
    assert [h["version"] for h in status["history"]][-3:] == ["1.0.0", "1.1.0", "1.0.0"]
    helm(kubeconfig, "uninstall", NAME, "--namespace", ns)


@pytest.fixture
def prometheus(operator: Shop, tmp_path: Path) -> Iterator[tuple[Servers, Any]]:
    """A real shop, scraped by a real Prometheus with monitoring/rules (labelled as the namespace)."""
    hooks = Webhooks()
    with start_shop("gate") as real:
        servers = Servers(
            tmp_path,
            hooks.url,
            {
                "kirana-api": f"127.0.0.1:{real.api_metrics_port}",
                "kirana-workers": f"127.0.0.1:{real.worker_port}",
            },
            namespace=operator.namespace,
        )
        try:
            yield servers, real
        finally:
            servers.close()
            hooks.close()


def test_health_gate_on_real_prometheus_rolls_back_when_redis_stops_during_the_bake(
    operator: Shop,
    chart: Chart,
    kubeconfig: Path,
    monitoring_crds: None,
    prometheus: tuple[Servers, Any],
    tmp_path: Path,
) -> None:
    shop, (servers, real) = operator, prometheus
    ns = shop.namespace
    wait_for(lambda: "KiranaWatchdog" in servers.firing(), 60, "the rules evaluated")
    gate = {"enabled": True, "url": servers.prom, "query": GATE_QUERY, "threshold": 0, "passOnNoData": True}
    started = time.monotonic()
    helm(
        kubeconfig,
        "install",
        NAME,
        str(CHART),
        "--namespace",
        ns,
        "-f",
        str(values(tmp_path, chart, healthGate=gate)),
    )
    shop.wait_phase(NAME, "Ready", timeout=120)
    v1_revision = shop.schema_revision()
    [release] = [shop.get(NAME)]
    assert release["spec"]["rollout"]["healthGate"]["prometheus"]["query"] == GATE_QUERY.replace(
        "{namespace}", ns
    )

    helm(
        kubeconfig,
        "upgrade",
        NAME,
        str(CHART),
        "--namespace",
        ns,
        "--reuse-values",
        "--set",
        "version=2.0.0",
        "--set",
        "rollout.bakeSeconds=120",
    )
    k8s.wait_for("the bake", lambda: shop.get(NAME).get("status", {}).get("phase") == "Baking", timeout=120)
    redis = real.redis_pid()
    os.kill(redis, signal.SIGSTOP)  # the new version "breaks" Redis while the gate watches
    try:
        status = shop.wait_phase(NAME, "Degraded", timeout=150)["status"]
        assert "KiranaRedisDown" in servers.firing()
    finally:
        os.kill(redis, signal.SIGCONT)
    degraded = shop.condition(NAME, "Degraded")
    assert degraded["reason"] == "HealthGateFailed", degraded
    assert "health query value 1" in degraded["message"] and "restored" in degraded["message"]
    assert shop.runner.commands() == ["db migrate", "db backup", "db migrate", "db restore"]
    assert shop.schema_revision() == v1_revision == status["schemaRevision"]
    assert not shop.table_exists("e2e_release_marker")
    assert shop.deployment_images(NAME) == {"api": "kirana-api:1.0.0", "workers": "kirana-api:1.0.0"}
    print(f"install to gate rollback: {time.monotonic() - started:.0f}s")
    helm(kubeconfig, "uninstall", NAME, "--namespace", ns)
