"""charts/kirana rendered by the pinned helm (`make tools`) and checked against its sources: the
PrometheusRules are monitoring/rules, the AlertmanagerConfig is monitoring/alertmanager's tree,
the dashboards are monitoring/dashboards; the ShopRelease parses as the operator's own model, and
the PodMonitors, the Ingress and the NetworkPolicies name what the operator really renders.

`make lint` adds `helm lint --strict` and kubeconform (with the monitoring.coreos.com and our CRD
schemas) for every ci/*-values.yaml; tests/e2e/test_kirana_chart.py installs it on the testbed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kirana.operator.plan import resources
from kirana.operator.plan.model import Owner
from kirana.operator.spec import parse_spec

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kirana"
MONITORING = REPO / "monitoring"
HELM = REPO / ".local" / "bin" / "helm"


def render(*args: str, name: str = "shop", namespace: str = "shop-prod") -> list[dict[str, Any]]:
    if not HELM.is_file():
        pytest.fail(f"{HELM} is missing: run `make tools`")
    proc = subprocess.run(
        [str(HELM), "template", name, str(CHART), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def render_fails(*args: str) -> str:
    proc = subprocess.run(
        [str(HELM), "template", "shop", str(CHART), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0, "rendered although it should not"
    return proc.stderr


def kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.fixture(scope="module")
def default() -> list[dict[str, Any]]:
    return render()


def test_default_renders_every_object_the_issue_lists(default: list[dict[str, Any]]) -> None:
    count = {k: len(kinds(default, k)) for k in {d["kind"] for d in default}}
    rule_files = len(list(MONITORING.glob("rules/*.yaml")))
    dashboards = len(list(MONITORING.glob("dashboards/*.json")))
    assert count == {
        "ShopRelease": 1,
        "Ingress": 1,
        "PodMonitor": 2,
        "ServiceMonitor": 1,
        "PrometheusRule": rule_files,
        "AlertmanagerConfig": 1,
        "ConfigMap": dashboards,
        "NetworkPolicy": 3,
        "PersistentVolumeClaim": 1,
    }
    assert all(d["metadata"]["namespace"] == "shop-prod" for d in default)


def test_shoprelease_is_what_the_operator_parses(default: list[dict[str, Any]]) -> None:
    [release] = kinds(default, "ShopRelease")
    spec = parse_spec(release["spec"])  # extra="forbid": a field the operator does not know fails
    assert release["metadata"]["name"] == "shop"
    assert spec.version == "1.0.0" and spec.image_ref == "kirana-api:1.0.0"
    assert spec.config.secret_name == "shop-env"
    assert spec.backup.storage is not None and spec.backup.storage.pvc.claim_name == "shop-backups"
    assert spec.backup.before_upgrade and spec.backup.schedule == "0 */6 * * *"
    gate = spec.rollout.health_gate.prometheus
    assert gate is not None and gate.threshold == 0.01
    assert gate.query == 'max(kirana:http_errors:ratio_rate5m{namespace="shop-prod"})'
    assert spec.failure_policy.database == "Restore"

    custom = render(
        "--set", "version=2.1.0", "--set", "healthGate.enabled=false", "--set", "config.env.KIRANA_WORKERS=4"
    )
    [release] = kinds(custom, "ShopRelease")
    spec = parse_spec(release["spec"])
    assert spec.version == "2.1.0" and spec.rollout.health_gate.prometheus is None
    assert [(e.name, e.value) for e in spec.config.env] == [("KIRANA_WORKERS", "4")]


def _operator_objects(release: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What the operator would create for this ShopRelease (its own rendering code)."""
    owner = Owner(kind="ShopRelease", name=release["metadata"]["name"], namespace="shop-prod", uid="u")
    spec = parse_spec(release["spec"])
    return {
        "api": resources.api_deployment(owner, spec, spec.image_ref, spec.version),
        "workers": resources.workers_deployment(owner, spec, spec.image_ref, spec.version),
        "service": resources.api_service(owner),
    }


def test_pod_monitors_scrape_the_metrics_port_the_operator_gives_its_pods(
    default: list[dict[str, Any]],
) -> None:
    [release] = kinds(default, "ShopRelease")
    made = _operator_objects(release)
    monitors = {m["metadata"]["name"]: m for m in kinds(default, "PodMonitor")}
    assert set(monitors) == {"shop-api", "shop-workers"}
    for component in ("api", "workers"):
        monitor = monitors[f"shop-{component}"]["spec"]
        pod = made[component]["spec"]["template"]
        labels = pod["metadata"]["labels"]
        assert monitor["selector"]["matchLabels"].items() <= labels.items()
        [endpoint] = monitor["podMetricsEndpoints"]
        ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
        assert endpoint["port"] == "metrics" and "metrics" in ports
        # The job label monitoring/rules match (up{job=~".*kirana.*api.*"}).
        assert {"action": "replace", "targetLabel": "job", "replacement": f"kirana-{component}"} in endpoint[
            "relabelings"
        ]
    api = made["api"]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "KIRANA_METRICS_PORT", "value": str(resources.METRICS_PORT)} in api["env"]
    assert "--metrics-port" not in api["args"]  # an older image (a rollback target) has no such flag
    workers_env = {
        e["name"]: e["value"] for e in made["workers"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert workers_env["KIRANA_WORKER_METRICS_PORT"] == str(resources.METRICS_PORT)
    # The api Service (what the ingress reaches) has no path to the metrics port.
    assert [p["targetPort"] for p in made["service"]["spec"]["ports"]] == ["http"]


def test_operator_service_monitor_selects_the_operator_charts_metrics_service(
    default: list[dict[str, Any]],
) -> None:
    [monitor] = kinds(default, "ServiceMonitor")
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"matchNames": ["kirana-system"]}
    operator = subprocess.run(
        [
            str(HELM),
            "template",
            "kop",
            str(REPO / "charts" / "kirana-operator"),
            "--namespace",
            "kirana-system",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    [service] = [d for d in yaml.safe_load_all(operator) if d and d["kind"] == "Service"]
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_prometheus_rules_are_monitoring_rules_unchanged(default: list[dict[str, Any]]) -> None:
    rendered = {r["metadata"]["name"]: r["spec"]["groups"] for r in kinds(default, "PrometheusRule")}
    for path in sorted(MONITORING.glob("rules/*.yaml")):
        assert rendered[f"shop-{path.stem}"] == yaml.safe_load(path.read_text())["groups"], path.name
    alerts = [r for groups in rendered.values() for g in groups for r in g["rules"] if "alert" in r]
    assert len(alerts) >= 27
    # Alert templates reach Prometheus as written, not expanded by helm.
    assert any("{{ $labels.namespace }}" in a["annotations"]["summary"] for a in alerts)


def test_selector_labels_are_a_value_on_every_monitoring_object() -> None:
    docs = render("--set", "monitoring.labels.release=kube-prometheus-stack")
    monitoring = [d for d in docs if d["apiVersion"].startswith("monitoring.coreos.com/")]
    assert len(monitoring) == 2 + 1 + len(list(MONITORING.glob("rules/*.yaml"))) + 1
    assert all(d["metadata"]["labels"]["release"] == "kube-prometheus-stack" for d in monitoring)


def _matcher(text: str) -> dict[str, str]:
    for op in ("=~", "!~", "!=", "="):
        if op in text:
            name, _, value = text.partition(op)
            return {"name": name.strip(), "value": value.strip().strip('"'), "matchType": op}
    raise AssertionError(text)


def test_alertmanager_config_is_the_monitoring_tree_with_secret_references(
    default: list[dict[str, Any]],
) -> None:
    source = yaml.safe_load((MONITORING / "alertmanager" / "alertmanager.yaml").read_text())
    [amc] = kinds(default, "AlertmanagerConfig")
    spec = amc["spec"]
    route, src_route = spec["route"], source["route"]
    assert route["receiver"] == src_route["receiver"] and route["groupBy"] == src_route["group_by"]
    assert [(r["receiver"], r["matchers"], r.get("continue", False)) for r in route["routes"]] == [
        (r["receiver"], [_matcher(m) for m in r["matchers"]], r.get("continue", False))
        for r in src_route["routes"]
    ]
    email_route = next(r for r in route["routes"] if r["receiver"] == "email-business")
    assert email_route["activeTimeIntervals"] == ["business-hours"]
    assert email_route["groupBy"] == ["category", "namespace"] and email_route["repeatInterval"] == "24h"
    assert [(i["sourceMatch"], i["targetMatch"], i["equal"]) for i in spec["inhibitRules"]] == [
        ([_matcher(m) for m in i["source_matchers"]], [_matcher(m) for m in i["target_matchers"]], i["equal"])
        for i in source["inhibit_rules"]
    ]
    # 09:00-19:00 Asia/Kolkata (UTC+05:30) is 03:30-13:30 UTC (v1alpha1 intervals have no location).
    [interval] = spec["muteTimeIntervals"]
    assert interval["timeIntervals"] == [
        {"weekdays": ["monday:saturday"], "times": [{"startTime": "03:30", "endTime": "13:30"}]}
    ]
    receivers = {r["name"]: r for r in spec["receivers"]}
    assert set(receivers) == {r["name"] for r in source["receivers"]} and len(receivers) >= 7
    slack = receivers["slack-oncall"]["slackConfigs"][0]
    assert slack["apiURL"] == {"name": "kirana-alerting", "key": "slack-webhook-url"}
    assert slack["channel"] == "#kirana-oncall" and slack["sendResolved"] is True
    assert slack["title"].startswith("{{ .CommonLabels.alertname }}")
    pd = receivers["pagerduty-payments"]["pagerdutyConfigs"][0]
    assert pd["routingKey"] == {"name": "kirana-alerting", "key": "pagerduty-payments"}
    assert pd["pagerDutyLinkConfigs"] == [{"href": "{{ .CommonAnnotations.runbook_url }}", "alt": "runbook"}]
    email = receivers["email-business"]["emailConfigs"][0]
    assert email["smarthost"] == source["global"]["smtp_smarthost"] and email["to"] == "business@kirana.dev"
    assert email["authPassword"] == {"name": "kirana-alerting", "key": "smtp-password"}
    assert email["headers"][0]["key"] == "Subject"
    # Every secret is a reference; no path of the file-based config leaks into the object.
    assert "/etc/alertmanager" not in json.dumps(spec)


def test_ingress_reaches_only_the_api_service_with_tls_body_size_and_websocket_timeouts(
    default: list[dict[str, Any]],
) -> None:
    [release] = kinds(default, "ShopRelease")
    service = _operator_objects(release)["service"]
    [ingress] = kinds(default, "Ingress")
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "2m"
    assert notes["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert notes["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600"
    assert ingress["spec"]["tls"] == [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]
    [rule] = ingress["spec"]["rules"]
    backends = [p["backend"]["service"] for p in rule["http"]["paths"]]
    assert backends == [{"name": service["metadata"]["name"], "port": {"name": "http"}}]
    assert {p["name"] for p in service["spec"]["ports"]} == {"http"}


def test_network_policies_let_only_the_ingress_reach_the_api_and_the_app_reach_its_stores(
    default: list[dict[str, Any]],
) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in kinds(default, "NetworkPolicy")}
    api = policies["shop-api-ingress"]
    assert api["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    [rule] = api["ingress"]
    assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]
    assert rule["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    [metrics] = policies["shop-metrics-ingress"]["ingress"]
    assert metrics["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert metrics["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    egress = policies["shop-egress"]
    assert egress["policyTypes"] == ["Egress"]
    ports = [p["port"] for rule in egress["egress"] for p in rule["ports"]]
    assert ports[:2] == [5432, 6379] and 53 in ports
    managed = render("-f", str(CHART / "ci" / "kube-prometheus-stack-values.yaml"), name="prod")
    [egress] = [
        p["spec"] for p in kinds(managed, "NetworkPolicy") if p["metadata"]["name"].endswith("-egress")
    ]
    assert egress["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.10.0.0/24"}}]


def test_dashboards_are_configmaps_for_grafanas_sidecar(default: list[dict[str, Any]]) -> None:
    maps = kinds(default, "ConfigMap")
    files = {p.name: json.loads(p.read_text()) for p in MONITORING.glob("dashboards/*.json")}
    got = {}
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        [(name, body)] = cm["data"].items()
        got[name] = json.loads(body)
    assert got == files


def test_schema_refuses_unknown_and_wrong_values() -> None:
    assert "additional properties 'nope' not allowed" in render_fails("--set", "nope=1")
    assert "ingress" in render_fails("--set", "ingress.tlsSecret=x")
    assert "failurePolicy" in render_fails("--set", "failurePolicy.database=Pray")
    schema = json.loads((CHART / "values.schema.json").read_text())

    def closed(node: Any) -> bool:
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and node.get("additionalProperties") is not False
            ):
                return False
            return all(closed(v) for v in node.values())
        return all(closed(v) for v in node) if isinstance(node, list) else True

    assert closed(schema)


def test_minimal_scenario_renders_only_the_release() -> None:
    docs = render("-f", str(CHART / "ci" / "minimal-values.yaml"))
    assert sorted(d["kind"] for d in docs) == ["PersistentVolumeClaim", "ShopRelease"]


def test_every_value_is_documented() -> None:
    text = (CHART / "values.yaml").read_text()
    documented = {line.split()[2] for line in text.splitlines() if line.startswith("## @param ")}

    def leaves(node: Any, prefix: str = "") -> set[str]:
        if (
            isinstance(node, dict)
            and node
            and not any(p in prefix for p in ("resources", "Selector", "selector", "labels"))
        ):
            out: set[str] = set()
            for k, v in node.items():
                key = f"{prefix}.{k}" if prefix else k
                out |= {key} if key in documented else leaves(v, key)
            return out
        return {prefix}

    missing = {
        k
        for k in leaves(yaml.safe_load(text))
        if not any(k == d or k.startswith(d + ".") for d in documented)
    }
    assert missing == set()
