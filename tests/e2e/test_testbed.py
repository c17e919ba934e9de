"""The testbed behaves like a real cluster for what Kirana relies on.

These tests pin down the Kubernetes behaviour the operator and the charts
depend on, against a real API server, controller-manager and scheduler, with
kwok standing in for kubelets: rolling updates that never lose capacity, Jobs
that finish or fail, CRD validation with CEL, server-side apply and the status
subresource. If one of them fails, either the testbed is broken or the
cluster does not behave as the operator's design assumes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from . import k8s

pytestmark = pytest.mark.e2e

SIMULATE = "testbed.kirana.dev/simulate"  # see testbed/kwok/pods.yaml


def pod_template(
    app: str, image: str, labels: dict[str, str] | None = None, *, restart: str = "Always"
) -> Any:
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels={"app": app, **(labels or {})}),
        spec=client.V1PodSpec(
            restart_policy=restart,
            automount_service_account_token=False,
            containers=[client.V1Container(name=app, image=image)],
        ),
    )


def test_server_reports_its_real_version(api: client.ApiClient, kubeconfig: Path) -> None:
    info = client.VersionApi(api).get_code()
    assert info.major == "1" and info.minor == info.git_version.split(".")[1]
    assert "0.0.0" not in info.git_version and "master" not in info.git_version
    if kubeconfig == k8s.TESTBED_KUBECONFIG:
        assert info.git_version == k8s.pinned_versions()["KUBE_VERSION"]


def test_kwok_nodes_are_ready_and_schedulable(api: client.ApiClient) -> None:
    nodes = client.CoreV1Api(api).list_node().items
    ready = [n.metadata.name for n in nodes if (c := k8s.condition(n, "Ready")) and c.status == "True"]
    assert ready, f"no Ready node among {[n.metadata.name for n in nodes]}"
    assert all(not n.spec.unschedulable for n in nodes)


def test_rolling_update_never_drops_below_desired_ready_replicas(
    api: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api)
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="shop"),
        spec=client.V1DeploymentSpec(
            replicas=3,
            selector=client.V1LabelSelector(match_labels={"app": "shop"}),
            strategy=client.V1DeploymentStrategy(
                type="RollingUpdate",
                rolling_update=client.V1RollingUpdateDeployment(max_unavailable=0, max_surge=1),
            ),
            template=pod_template("shop", "kirana-api:1.0.0"),
        ),
    )
    apps.create_namespaced_deployment(namespace, deployment)

    def rolled_out(generation: int, image: str) -> client.V1Deployment | None:
        d = apps.read_namespaced_deployment("shop", namespace)
        s = d.status
        done = (
            (s.observed_generation or 0) >= generation
            and s.updated_replicas == 3
            and s.ready_replicas == 3
            and s.available_replicas == 3
            and s.replicas == 3
            and d.spec.template.spec.containers[0].image == image
        )
        return d if done else None

    before = k8s.wait_for("3 ready replicas", lambda: rolled_out(1, "kirana-api:1.0.0"))

    # Watch from the resource version read before the change, so every status
    # the controller writes during the rollout is seen, in order.
    patched = apps.patch_namespaced_deployment(
        "shop",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "shop", "image": "kirana-api:1.1.0"}]}}}},
    )
    observed: list[tuple[int, int, int, int]] = []  # (replicas, ready, updated, available)
    # maxSurge bounds the pods the controller asks for: the sum of its ReplicaSets' spec.replicas.
    # status.replicas adds up ReplicaSet statuses written at different moments, so one can
    # briefly still count pods another has already replaced (5 was seen once).
    asked: list[int] = []
    complete = False
    stream = watch.Watch().stream(
        apps.list_namespaced_deployment,
        namespace,
        field_selector="metadata.name=shop",
        resource_version=before.metadata.resource_version,
        timeout_seconds=90,
    )
    for event in stream:
        d = event["object"]
        s = d.status
        observed.append(
            (s.replicas or 0, s.ready_replicas or 0, s.updated_replicas or 0, s.available_replicas or 0)
        )
        sets = apps.list_namespaced_replica_set(namespace, label_selector="app=shop").items
        asked.append(sum(rs.spec.replicas or 0 for rs in sets))
        progressing = k8s.condition(d, "Progressing")
        if (
            (s.observed_generation or 0) >= patched.metadata.generation
            and (s.updated_replicas, s.ready_replicas, s.replicas) == (3, 3, 3)
            and progressing is not None
            and progressing.reason == "NewReplicaSetAvailable"
        ):
            complete = True
            break
    assert complete, f"rollout did not complete within 90s; statuses seen: {observed}"
    assert min(ready for _, ready, _, _ in observed) >= 3, f"ready replicas fell below 3: {observed}"
    assert max(asked) <= 4, f"maxSurge 1 means 4 pods at most, and the controller asked for: {asked}"
    assert max(replicas for replicas, _, _, _ in observed) >= 4, f"the surge was never used: {observed}"
    assert any(0 < updated < 3 for _, _, updated, _ in observed), (
        f"no intermediate rollout step seen: {observed}"
    )

    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="app=shop").items
    live = [p for p in pods if p.metadata.deletion_timestamp is None]
    assert sorted(p.spec.containers[0].image for p in live) == ["kirana-api:1.1.0"] * 3


def test_pods_labelled_not_ready_run_but_never_become_ready(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="sick"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels={"app": "sick"}),
                template=pod_template("sick", "kirana-api:broken", {SIMULATE: "not-ready"}),
            ),
        ),
    )
    core = client.CoreV1Api(api)

    def running() -> list[client.V1Pod] | None:
        pods = core.list_namespaced_pod(namespace, label_selector="app=sick").items
        return pods if len(pods) == 2 and all(p.status.phase == "Running" for p in pods) else None

    pods = k8s.wait_for("2 running pods", running)
    assert all(k8s.condition(p, "Ready").status == "False" for p in pods)
    status = apps.read_namespaced_deployment_status("sick", namespace).status
    assert not status.ready_replicas and not status.available_replicas


def make_job(name: str, labels: dict[str, str] | None = None, completions: int = 1) -> client.V1Job:
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            completions=completions,
            parallelism=1,
            backoff_limit=0,
            template=pod_template(name, "kirana-api:1.0.0", labels, restart="Never"),
        ),
    )


def test_job_runs_to_completion(api: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(namespace, make_job("migrate", completions=2))

    def finished() -> client.V1Job | None:
        job = batch.read_namespaced_job_status("migrate", namespace)
        done = [
            c for c in job.status.conditions or [] if c.type in ("Complete", "Failed") and c.status == "True"
        ]
        return job if done else None

    job = k8s.wait_for("the job to finish", finished)
    assert k8s.condition(job, "Complete") is not None, f"job did not complete: {job.status}"
    assert job.status.succeeded == 2
    assert not job.status.failed


def test_job_whose_pod_fails_reports_failure(api: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(namespace, make_job("backup", {SIMULATE: "fail"}))

    def finished() -> client.V1Job | None:
        job = batch.read_namespaced_job_status("backup", namespace)
        done = [
            c for c in job.status.conditions or [] if c.type in ("Complete", "Failed") and c.status == "True"
        ]
        return job if done else None

    job = k8s.wait_for("the job to finish", finished)
    failed = k8s.condition(job, "Failed")
    assert failed is not None and failed.status == "True", f"job did not fail: {job.status}"
    assert failed.reason == "BackoffLimitExceeded"
    assert job.status.failed == 1 and not job.status.succeeded

    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="app=backup").items
    assert [p.status.phase for p in pods] == ["Failed"]
    assert pods[0].status.container_statuses[0].state.terminated.exit_code == 1


@pytest.fixture
def widget_crd(api: client.ApiClient) -> Iterator[dict[str, str]]:
    """A namespaced CRD with a schema, a CEL rule and a status subresource.

    Its group is unique per test, so runs against a long-lived cluster never
    collide; it is deleted afterwards.
    """
    group = f"t{uuid.uuid4().hex[:8]}.e2e.kirana.dev"
    ext = client.ApiextensionsV1Api(api)
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["replicas"],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 0},
                    "minReplicas": {"type": "integer", "minimum": 0},
                    "image": {"type": "string"},
                    "owner": {"type": "string"},
                },
                "x-kubernetes-validations": [
                    {
                        "rule": "!has(self.minReplicas) || self.minReplicas <= self.replicas",
                        "message": "minReplicas must not exceed replicas",
                    }
                ],
            },
            "status": {
                "type": "object",
                "properties": {"phase": {"type": "string"}, "observedGeneration": {"type": "integer"}},
            },
        },
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                }
            ],
        },
    }
    ext.create_custom_resource_definition(crd)
    try:

        def established() -> bool:
            got = ext.read_custom_resource_definition(f"widgets.{group}")
            return any(c.type == "Established" and c.status == "True" for c in got.status.conditions or [])

        k8s.wait_for("the CRD to be established", established, timeout=30)
        # The dynamic client re-reads discovery when a kind is missing.
        dyn = DynamicClient(api)
        k8s.wait_for(
            "the new kind in discovery",
            lambda: _try(lambda: dyn.resources.get(api_version=f"{group}/v1", kind="Widget")),
            timeout=30,
        )
        yield {"group": group, "api_version": f"{group}/v1"}
    finally:
        k8s.ignore_not_found(lambda: ext.delete_custom_resource_definition(f"widgets.{group}"))


def _try(call: Any) -> Any:
    try:
        return call()
    except Exception:  # "not yet" for wait_for
        return None


def widget(api_version: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "Widget", "metadata": {"name": name}, "spec": spec}


def test_crd_schema_and_cel_rule_reject_invalid_objects(
    api: client.ApiClient, namespace: str, widget_crd: dict[str, str]
) -> None:
    custom = client.CustomObjectsApi(api)
    group = widget_crd["group"]
    created = custom.create_namespaced_custom_object(
        group, "v1", namespace, "widgets", widget(widget_crd["api_version"], "ok", replicas=3, minReplicas=2)
    )
    assert created["spec"] == {"replicas": 3, "minReplicas": 2}

    with pytest.raises(ApiException) as cel:
        custom.create_namespaced_custom_object(
            group,
            "v1",
            namespace,
            "widgets",
            widget(widget_crd["api_version"], "bad", replicas=1, minReplicas=2),
        )
    assert cel.value.status == 422
    body = json.loads(cel.value.body)
    assert body["reason"] == "Invalid"
    assert "minReplicas must not exceed replicas" in body["message"]

    with pytest.raises(ApiException) as schema:
        custom.create_namespaced_custom_object(
            group, "v1", namespace, "widgets", widget(widget_crd["api_version"], "neg", replicas=-1)
        )
    assert schema.value.status == 422
    assert "spec.replicas" in json.loads(schema.value.body)["message"]

    # The rule guards updates too, not only creation.
    with pytest.raises(ApiException) as update:
        custom.patch_namespaced_custom_object(
            group, "v1", namespace, "widgets", "ok", {"spec": {"replicas": 1}}
        )
    assert update.value.status == 422
    assert "minReplicas must not exceed replicas" in json.loads(update.value.body)["message"]


def test_server_side_apply_tracks_field_owners(
    api: client.ApiClient, namespace: str, widget_crd: dict[str, str]
) -> None:
    dyn = DynamicClient(api)
    widgets = dyn.resources.get(api_version=widget_crd["api_version"], kind="Widget")
    mine = widget(
        widget_crd["api_version"], "applied", replicas=2, image="kirana-api:1.0.0", owner="operator"
    )

    first = widgets.server_side_apply(body=mine, namespace=namespace, field_manager="kirana-operator")
    assert first.spec.replicas == 2
    managers = {m["manager"]: m["operation"] for m in first.metadata.managedFields}
    assert managers == {"kirana-operator": "Apply"}

    # Another manager may not silently take over a field it does not own...
    theirs = widget(widget_crd["api_version"], "applied", replicas=5)
    with pytest.raises(ApiException) as conflict:
        widgets.server_side_apply(body=theirs, namespace=namespace, field_manager="sre-kubectl")
    assert conflict.value.status == 409
    assert "kirana-operator" in json.loads(conflict.value.body)["message"]

    # ...but can when it forces, and then owns it.
    forced = widgets.server_side_apply(
        body=theirs, namespace=namespace, field_manager="sre-kubectl", force_conflicts=True
    )
    assert forced.spec.replicas == 5
    owners = {m["manager"] for m in forced.metadata.managedFields}
    assert owners == {"kirana-operator", "sre-kubectl"}

    # A field its only manager stops applying is removed.
    trimmed = widget(widget_crd["api_version"], "applied", image="kirana-api:1.0.0")
    after = widgets.server_side_apply(body=trimmed, namespace=namespace, field_manager="kirana-operator")
    assert after.spec.to_dict() == {"replicas": 5, "image": "kirana-api:1.0.0"}


def test_status_subresource_separates_spec_and_status(
    api: client.ApiClient, namespace: str, widget_crd: dict[str, str]
) -> None:
    custom = client.CustomObjectsApi(api)
    group = widget_crd["group"]
    created = custom.create_namespaced_custom_object(
        group, "v1", namespace, "widgets", widget(widget_crd["api_version"], "w", replicas=1)
    )
    assert created["metadata"]["generation"] == 1

    # Status written through /status lands, and does not bump the generation.
    with_status = custom.patch_namespaced_custom_object_status(
        group, "v1", namespace, "widgets", "w", {"status": {"phase": "Ready", "observedGeneration": 1}}
    )
    assert with_status["status"] == {"phase": "Ready", "observedGeneration": 1}
    assert with_status["metadata"]["generation"] == 1

    # Spec changes sent to /status are ignored...
    ignored = custom.patch_namespaced_custom_object_status(
        group, "v1", namespace, "widgets", "w", {"spec": {"replicas": 9}}
    )
    assert ignored["spec"]["replicas"] == 1

    # ...and status sent to the main resource is ignored, while spec changes there bump the generation.
    updated = custom.patch_namespaced_custom_object(
        group, "v1", namespace, "widgets", "w", {"spec": {"replicas": 2}, "status": {"phase": "Hacked"}}
    )
    assert updated["spec"]["replicas"] == 2
    assert updated["status"]["phase"] == "Ready"
    assert updated["metadata"]["generation"] == 2
