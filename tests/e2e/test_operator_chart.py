"""The operator chart on a real API server: `helm install` charts/kirana-operator, its Deployment
becomes available, and the operator process runs exactly as the chart's pod would (its command line
and environment, authenticated with a token of the chart's ServiceAccount, kopf peering through the
chart's peering object) and carries a release to Ready. That proves the RBAC is enough; access
reviews prove it is no more than needed. Two peered replicas: one works, the other stands by, and
takes over when the first dies.

No container runs on the testbed (kwok plays the kubelet), so the pods' process runs here.
"""

from __future__ import annotations

import base64
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kirana.api.devstack import free_port

from . import k8s
from .jobrunner import BIN, REPO, OperatorProcess, Shop, _delete_releases, make_secret, shoprelease

CHART = REPO / "charts" / "kirana-operator"
HELM = REPO / ".local" / "bin" / "helm"
NAME = "shop"
RECONCILES = "kirana_operator_reconcile_duration_seconds_count"


@dataclass
class Chart:
    api: client.ApiClient
    kubeconfig: Path
    release: str
    namespace: str  # where the operator is installed
    watched: str  # the one namespace it watches (the shop's)
    processes: list[OperatorProcess] = field(default_factory=list)

    @property
    def fullname(self) -> str:
        return f"{self.release}-kirana-operator"

    def deployment(self) -> Any:
        return client.AppsV1Api(self.api).read_namespaced_deployment(self.fullname, self.namespace)

    def pod_names(self) -> list[str]:
        pods = client.CoreV1Api(self.api).list_namespaced_pod(
            self.namespace, label_selector=f"app.kubernetes.io/instance={self.release}"
        )
        return sorted(p.metadata.name for p in pods.items)

    def service_account_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig authenticating with a token the API server issued to the chart's SA."""
        sa = self.deployment().spec.template.spec.service_account_name
        token = (
            client.CoreV1Api(self.api)
            .create_namespaced_service_account_token(
                sa,
                self.namespace,
                client.AuthenticationV1TokenRequest(
                    spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
                ),
            )
            .status.token
        )
        admin = yaml.safe_load(self.kubeconfig.read_text())
        cluster = admin["clusters"][0]["cluster"]
        if "certificate-authority" in cluster:
            ca = Path(cluster.pop("certificate-authority")).read_bytes()
            cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "testbed", "cluster": cluster}],
            "users": [{"name": sa, "user": {"token": token}}],
            "contexts": [{"name": sa, "context": {"cluster": "testbed", "user": sa}}],
            "current-context": sa,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def operator(self, kubeconfig: Path, log_dir: Path, pod: str) -> OperatorProcess:
        """The chart's container as a local process playing `pod`: its command, args and env."""
        container = self.deployment().spec.template.spec.containers[0]
        argv = [*(container.command or []), *(container.args or [])]
        assert argv[0] == "kopf"
        argv[0] = str(BIN / "kopf")
        # The pod's liveness endpoint, on a port of its own here (two "pods" share this host).
        argv = [
            f"--liveness=http://127.0.0.1:{free_port()}/healthz" if a.startswith("--liveness=") else a
            for a in argv
        ]
        env = {}
        for e in container.env or []:
            if e.value is not None:
                env[e.name] = e.value
            elif (
                e.value_from
                and e.value_from.field_ref
                and e.value_from.field_ref.field_path == "metadata.name"
            ):
                env[e.name] = pod
        proc = OperatorProcess(kubeconfig, self.watched, log_dir, argv=argv, env=env, name=pod)
        self.processes.append(proc)
        return proc

    def peers(self) -> dict[str, Any]:
        """The live entries of the chart's peering object in the watched namespace."""
        obj = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            "kopf.dev", "v1", self.watched, "kopfpeerings", self.fullname
        )
        return dict(obj.get("status") or {})


def helm(kubeconfig: Path, *args: str) -> str:
    if not HELM.is_file():
        pytest.fail(f"{HELM} is missing: run `make tools`")
    proc = subprocess.run(
        [str(HELM), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def chart(api: client.ApiClient, kubeconfig: Path, shop_world: Shop) -> Iterator[Chart]:
    """charts/kirana-operator installed in a namespace of its own, watching the shop's namespace."""
    core = client.CoreV1Api(api)
    suffix = uuid.uuid4().hex[:6]
    ns = f"kirana-system-{suffix}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    k8s.wait_for(
        f"the default service account in {ns}",
        lambda: core.list_namespaced_service_account(ns, field_selector="metadata.name=default").items,
        timeout=30,
    )
    release = f"kop-{suffix}"
    helm(
        kubeconfig,
        "install",
        release,
        str(CHART),
        "--namespace",
        ns,
        "--set",
        f"watchNamespaces={{{shop_world.namespace}}}",
        "--set",
        "peeringLifetimeSeconds=10",
    )
    installed = Chart(api, kubeconfig, release, ns, shop_world.namespace)
    try:
        yield installed
    finally:
        # The ShopReleases go while the operator and the chart's RBAC are still there, so the
        # operator releases its finalizer (this runs before shop_world's teardown).
        _delete_releases(shop_world)
        for proc in installed.processes:
            proc.stop()
        helm(kubeconfig, "uninstall", release, "--namespace", ns)
        k8s.ignore_not_found(lambda: core.delete_namespace(ns))


def wait_available(chart: Chart) -> Any:
    def available() -> Any:
        d = chart.deployment()
        return d if (d.status.available_replicas or 0) == d.spec.replicas else None

    return k8s.wait_for("the operator Deployment to be available", available, timeout=90)


def can(api: client.ApiClient, verb: str, resource: str, namespace: str | None, group: str = "") -> bool:
    """SelfSubjectAccessReview: may the client's own identity do this?"""
    attrs: dict[str, Any] = {"verb": verb, "group": group}
    resource, _, sub = resource.partition("/")
    attrs["resource"] = resource
    if sub:
        attrs["subresource"] = sub
    if namespace:
        attrs["namespace"] = namespace
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs},
        }
    )
    return bool(review.status.allowed)


def test_chart_installs_and_its_service_account_carries_a_release(
    chart: Chart, shop_world: Shop, tmp_path: Path
) -> None:
    deployment = wait_available(chart)
    assert deployment.spec.replicas == 2 and len(chart.pod_names()) == 2
    assert "--standalone" not in deployment.spec.template.spec.containers[0].args

    sa_config = chart.service_account_kubeconfig(tmp_path / "sa.kubeconfig")
    with k8s.api_client(sa_config) as sa:
        whoami = client.AuthenticationV1Api(sa).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
        assert whoami.status.user_info.username == (
            f"system:serviceaccount:{chart.namespace}:{deployment.spec.template.spec.service_account_name}"
        )
        app, other = chart.watched, chart.namespace
        # (verb, resource, namespace, group, allowed): what reconciling needs, and nothing more.
        table = [
            ("create", "jobs", app, "batch", True),
            ("patch", "deployments", app, "apps", True),
            ("update", "shopreleases/status", app, "kirana.dev", True),
            ("patch", "kopfpeerings", app, "kopf.dev", True),
            ("get", "secrets", app, "", True),  # whether a named Secret exists (rbac.checkSecrets)
            ("list", "secrets", app, "", False),
            ("watch", "secrets", app, "", False),
            ("get", "secrets", other, "", False),
            ("create", "pods", app, "", False),
            ("delete", "deployments", app, "apps", False),
            ("delete", "shopreleases", app, "kirana.dev", False),
            ("create", "jobs", other, "batch", False),
            ("patch", "deployments", "default", "apps", False),
            ("patch", "clusterkopfpeerings", None, "kopf.dev", False),
        ]
        got = [(verb, res, ns, can(sa, verb, res, ns, group)) for verb, res, ns, group, _ in table]
        assert got == [(verb, res, ns, allowed) for verb, res, ns, _, allowed in table]
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(sa).list_namespaced_secret(app)
        assert denied.value.status == 403

    shop_world.operator = chart.operator(sa_config, tmp_path, chart.pod_names()[0])
    shop_world.operator.start()
    shop_world.apply(shoprelease(NAME, "1.0.0"))
    status = shop_world.wait_phase(NAME, "Ready", timeout=120)["status"]
    assert status["currentVersion"] == "1.0.0"
    assert shop_world.runner.commands() == ["db migrate"]
    assert shop_world.deployment_images(NAME) == {"api": "kirana-api:1.0.0", "workers": "kirana-api:1.0.0"}
    # Peered, not standalone: the replica registered in the chart's peering object.
    assert list(chart.peers()) == [chart.pod_names()[0]]
    logs = shop_world.operator.logs()
    messages = re.sub(r"^\[[^]]*\]", "", logs, flags=re.M)  # not the timestamps: ",403" is a millisecond
    assert "403" not in messages and "Forbidden" not in messages, logs[-3000:]


def test_two_peered_replicas_one_reconciles_and_the_other_takes_over(
    chart: Chart, shop_world: Shop, tmp_path: Path
) -> None:
    wait_available(chart)
    sa_config = chart.service_account_kubeconfig(tmp_path / "sa.kubeconfig")
    first, second = chart.pod_names()
    active = chart.operator(sa_config, tmp_path, first)
    standby = chart.operator(sa_config, tmp_path, second)
    shop_world.operator = active
    active.start()
    k8s.wait_for("the first replica to join the peering", lambda: first in chart.peers(), timeout=60)
    standby.start()
    k8s.wait_for("both replicas in the peering", lambda: set(chart.peers()) == {first, second}, timeout=60)
    peers = chart.peers()
    # Distinct priorities (equal ones would pause both): the elder replica leads.
    assert peers[first]["priority"] > peers[second]["priority"]

    shop_world.apply(shoprelease(NAME, "1.0.0"))
    shop_world.wait_phase(NAME, "Ready", timeout=120)
    assert active.metric(RECONCILES) > 0
    assert standby.metric(RECONCILES) == 0, standby.logs()[-3000:]

    # The active replica dies without a goodbye (node lost); the standby must finish the job.
    active.kill()
    shop_world.operator = standby
    shop_world.apply(shoprelease(NAME, "2.0.0"))
    status = shop_world.wait_phase(NAME, "Ready", timeout=180)["status"]
    assert status["currentVersion"] == "2.0.0"
    assert shop_world.runner.commands() == ["db migrate", "db backup", "db migrate"]
    assert standby.metric(RECONCILES) > 0
    assert "Resuming operations" in standby.logs()
    k8s.wait_for(
        "the dead replica to be cleaned from the peering", lambda: list(chart.peers()) == [second], timeout=60
    )


def test_under_the_chart_a_missing_secret_holds_the_release_until_it_appears(
    chart: Chart, shop_world: Shop, tmp_path: Path
) -> None:
    wait_available(chart)
    sa_config = chart.service_account_kubeconfig(tmp_path / "sa.kubeconfig")
    shop_world.operator = chart.operator(sa_config, tmp_path, chart.pod_names()[0])
    shop_world.operator.start()
    shop_world.apply(shoprelease(NAME, "1.0.0", config={"secretName": "late-env"}))
    status = shop_world.wait_phase(NAME, "InvalidSpec", timeout=60)["status"]
    cond = next(c for c in status["conditions"] if c["type"] == "InvalidSpec")
    assert "Secret late-env (spec.config.secretName) does not exist" in cond["message"], cond
    assert shop_world.runner.commands() == []  # nothing ran
    make_secret(shop_world.api, shop_world.namespace, "late-env", shop_world.database_url)
    shop_world.wait_phase(NAME, "Ready", timeout=120)
    assert shop_world.runner.commands() == ["db migrate"]


def test_both_replicas_killed_at_once_mid_release_their_replacements_finish_it(
    chart: Chart, shop_world: Shop, tmp_path: Path
) -> None:
    wait_available(chart)
    sa_config = chart.service_account_kubeconfig(tmp_path / "sa.kubeconfig")
    first, second = chart.pod_names()
    replicas = [chart.operator(sa_config, tmp_path, first), chart.operator(sa_config, tmp_path, second)]
    shop_world.operator = replicas[0]
    replicas[0].start()
    k8s.wait_for("the first replica to join the peering", lambda: first in chart.peers(), timeout=60)
    replicas[1].start()
    k8s.wait_for("both replicas in the peering", lambda: set(chart.peers()) == {first, second}, timeout=60)
    shop_world.apply(shoprelease(NAME, "1.0.0"))
    shop_world.wait_phase(NAME, "Ready", timeout=120)
    v1_revision = shop_world.schema_revision()

    shop_world.runner.hold()  # the pre-upgrade backup's pod stays Running
    shop_world.apply(shoprelease(NAME, "2.0.0"))
    k8s.wait_for(
        "the backup step to start",
        lambda: shop_world.get(NAME)["status"].get("phase") == "BackingUp",
        timeout=60,
    )
    for replica in replicas:  # both at once, no goodbye: the node they shared died
        replica.kill()
    shop_world.runner.release()  # the backup finishes while no operator runs
    time.sleep(2)
    assert shop_world.get(NAME)["status"]["phase"] == "BackingUp"  # nobody moved it on

    # The Deployment's replacements: new pod names, stale peers still in the peering object.
    fresh = [
        chart.operator(sa_config, tmp_path, f"{first}-new"),
        chart.operator(sa_config, tmp_path, f"{second}-new"),
    ]
    for replica in fresh:
        replica.start()
    shop_world.operator = fresh[0]
    status = shop_world.wait_phase(NAME, "Ready", timeout=240)["status"]
    assert status["currentVersion"] == "2.0.0"
    assert shop_world.schema_revision() == status["schemaRevision"] != v1_revision
    assert shop_world.runner.commands() == ["db migrate", "db backup", "db migrate"]  # each step once
    assert shop_world.deployment_images(NAME) == {"api": "kirana-api:2.0.0", "workers": "kirana-api:2.0.0"}
    # Exactly one of the replacements did the work; the other stood by.
    assert sorted(r.metric(RECONCILES) > 0 for r in fresh) == [False, True]
