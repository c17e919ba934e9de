"""Stand-ins for what the testbed lacks (a kubelet and container images), so operator e2e tests can
prove the real wiring: the real operator process, the real Job command lines, a real database.

- `JobRunner` watches pods in a test namespace that carry `testbed.kirana.dev/simulate: external`
  (kwok starts them but never completes them, see testbed/kwok/pods.yaml), runs each pod's real
  command line (`kirana db ...`, or the CronJob's `sh -c` script) on this machine with the pod's
  environment resolved from its Secret, ConfigMap and env, PVC mounts mapped to local folders, and
  then writes the outcome into the pod's status as a kubelet would: phase Succeeded/Failed, the
  exit code, and the command's output as the termination message (the kubelet's log endpoint is
  what a real cluster reads instead; there is none here).
- `Images` stands in for image contents: an image reference maps to the environment its code
  implies (which migrations folder it ships), so "v2" can carry a new migration and "v3-broken"
  a failing one.
- `OperatorProcess` runs `kopf run -m kirana.operator.handlers` as a subprocess against the
  testbed's kubeconfig, and can be killed and restarted.
- Fixtures used by tests/e2e/test_operator_*.py.

Used only by tests; nothing here is imported by the operator.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from kirana.api.devstack import EmbeddedPostgres, free_port

from . import k8s

REPO = Path(__file__).resolve().parents[2]
CRDS = [
    REPO / "charts" / "kirana-operator" / "crds" / "shopreleases.kirana.dev.yaml",
    REPO / "charts" / "kirana-operator" / "crds" / "shopbackups.kirana.dev.yaml",
]
SIMULATE = "testbed.kirana.dev/simulate"
EXTERNAL = {SIMULATE: "external"}
GROUP, VERSION, PLURAL = "kirana.dev", "v1alpha1", "shopreleases"
BIN = Path(sys.executable).parent


# -- image contents ----------------------------------------------------------------------------------


def migrations_with(root: Path, name: str, revision_body: str | None) -> Path:
    """A copy of the repository's migrations, plus one revision on top when `revision_body` is given."""
    target = root / name
    if target.exists():
        return target
    shutil.copytree(REPO / "migrations", target, ignore=shutil.ignore_patterns("__pycache__"))
    if revision_body is not None:
        versions = target / "versions"
        heads = _heads(versions)
        assert len(heads) == 1, heads
        rev = f"e2e{uuid.uuid4().hex[:9]}"
        source = textwrap.dedent(
            f'''\
            """e2e: {name}"""
            from alembic import op
            import sqlalchemy as sa

            revision = "{rev}"
            down_revision = "{heads[0]}"
            branch_labels = None
            depends_on = None

            '''
        ) + textwrap.dedent(revision_body)
        (versions / f"2099_01_01_{rev}_{name}.py").write_text(source)
    return target


def _heads(versions: Path) -> list[str]:
    revs, downs = set(), set()
    for f in versions.glob("*.py"):
        text = f.read_text()
        ns: dict[str, Any] = {}
        for line in text.splitlines():
            if line.startswith(("revision", "down_revision")) and "=" in line:
                key, _, value = line.partition("=")
                key = key.split(":")[0].strip()
                with contextlib.suppress(Exception):
                    ns[key] = eval(value.strip(), {})  # our own migration files
        if "revision" in ns:
            revs.add(ns["revision"])
            if ns.get("down_revision"):
                downs.add(ns["down_revision"])
    return sorted(revs - downs)


V2_REVISION = """
def upgrade() -> None:
    op.create_table("e2e_release_marker", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("e2e_release_marker")
"""

BROKEN_REVISION = """
def upgrade() -> None:
    op.execute("ALTER TABLE table_that_does_not_exist ADD COLUMN nope integer")


def downgrade() -> None:
    pass
"""


@dataclass
class Images:
    """What each image reference "contains": environment overrides for the code it would ship."""

    env: dict[str, dict[str, str]] = field(default_factory=dict)

    def for_image(self, image: str) -> dict[str, str]:
        if image not in self.env:
            raise AssertionError(f"test image {image} is not defined (known: {sorted(self.env)})")
        return self.env[image]


# -- the job runner -----------------------------------------------------------------------------------


@dataclass
class Run:
    pod: str
    job: str
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    started: float = 0.0  # time.monotonic() when the command began


class JobRunner:
    """Runs Job pods' commands locally and reports their outcome into pod status."""

    def __init__(self, api: client.ApiClient, namespace: str, *, images: Images, storage: Path) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.images = images
        self.storage = storage
        self.runs: list[Run] = []
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._go = threading.Event()  # cleared by hold(): pods wait, Running, until release()
        self._go.set()
        self._thread = threading.Thread(target=self._loop, name=f"jobrunner-{namespace}", daemon=True)

    def __enter__(self) -> JobRunner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def hold(self) -> None:
        """Keep the next Job pods Running (their command not yet run) until `release()`."""
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    def _loop(self) -> None:
        selector = f"{SIMULATE}=external"
        while not self._stop.is_set():
            try:
                pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector)
                for pod in pods.items:
                    self._maybe_run(pod)
                w = watch.Watch()
                for ev in w.stream(
                    self.core.list_namespaced_pod,
                    self.namespace,
                    label_selector=selector,
                    resource_version=pods.metadata.resource_version,
                    timeout_seconds=2,
                ):
                    self._maybe_run(ev["object"])
                    if self._stop.is_set():
                        w.stop()
            except ApiException as exc:
                if exc.status == 410:
                    continue
                time.sleep(0.5)
            except Exception:  # keep serving the test; the failure shows in its asserts
                time.sleep(0.5)

    def _maybe_run(self, pod: Any) -> None:
        uid = pod.metadata.uid
        if uid in self._seen or pod.metadata.deletion_timestamp:
            return
        if not pod.status or pod.status.phase != "Running":
            return
        self._seen.add(uid)
        while not self._go.wait(0.2):
            if self._stop.is_set():
                return
        run = self.run_pod(pod)
        self.runs.append(run)
        # Like a kubelet, keep trying to report while the API server is away (a fault test).
        deadline = time.monotonic() + 120
        while True:
            try:
                self._report(pod, run)
                return
            except ApiException as exc:
                if exc.status == 404:
                    return  # the pod was deleted meanwhile: nothing to report to
                if time.monotonic() > deadline or self._stop.is_set():
                    raise
                time.sleep(0.5)
            except Exception:  # the connection itself: the server is restarting
                if time.monotonic() > deadline or self._stop.is_set():
                    raise
                time.sleep(0.5)

    def _env(self, container: Any) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIRANA_")}
        env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
        for src in container.env_from or []:
            if src.secret_ref:
                secret = self.core.read_namespaced_secret(src.secret_ref.name, self.namespace)
                env.update({k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()})
            if src.config_map_ref:
                cm = self.core.read_namespaced_config_map(src.config_map_ref.name, self.namespace)
                env.update(cm.data or {})
        for e in container.env or []:
            ref = e.value_from.secret_key_ref if e.value_from else None
            if ref is None:
                env[e.name] = e.value or ""
                continue
            try:
                data = self.core.read_namespaced_secret(ref.name, self.namespace).data or {}
            except ApiException as exc:
                if exc.status != 404 or not ref.optional:
                    raise
                data = {}
            if ref.key in data:
                env[e.name] = base64.b64decode(data[ref.key]).decode()
            elif not ref.optional:
                raise AssertionError(f"key {ref.key} missing from Secret {ref.name}")
        return env

    def run_pod(self, pod: Any) -> Run:
        container = pod.spec.containers[0]
        volumes = {v.name: v for v in pod.spec.volumes or []}
        mounts: dict[str, Path] = {}
        scratch = self.storage / "scratch" / pod.metadata.name
        for m in container.volume_mounts or []:
            vol = volumes[m.name]
            if vol.persistent_volume_claim:
                local = self.storage / "pvc" / vol.persistent_volume_claim.claim_name
            else:
                local = scratch / m.name
            local.mkdir(parents=True, exist_ok=True)
            mounts[m.mount_path] = local

        def local_path(value: str) -> str:
            for mount, local in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
                if value == mount or value.startswith(mount + "/"):
                    return str(local) + value[len(mount) :]
            return value

        env = {k: local_path(v) for k, v in self._env(container).items()}
        env.update(self.images.for_image(container.image))
        argv = [local_path(a) for a in [*(container.command or []), *(container.args or [])]]
        timeout = 600
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd=scratch)
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            code, out, err = 124, str(exc.stdout or ""), f"timed out after {timeout}s"
        job = next((o.name for o in pod.metadata.owner_references or [] if o.kind == "Job"), "")
        return Run(
            pod=pod.metadata.name, job=job, argv=argv, exit_code=code, stdout=out, stderr=err, started=started
        )

    def _report(self, pod: Any, run: Run) -> None:
        ok = run.exit_code == 0
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # FallbackToLogsOnError: a failed container's message is its log tail.
        message = (run.stdout if ok else (run.stdout + run.stderr))[-4000:]
        patch = {
            "status": {
                "phase": "Succeeded" if ok else "Failed",
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now},
                    {
                        "type": "ContainersReady",
                        "status": "False",
                        "reason": "PodCompleted",
                        "lastTransitionTime": now,
                    },
                ],
                "containerStatuses": [
                    {
                        "name": c.name,
                        "image": c.image,
                        "imageID": f"jobrunner://{c.image}",
                        "ready": False,
                        "started": False,
                        "restartCount": 0,
                        "state": {
                            "terminated": {
                                "exitCode": run.exit_code,
                                "reason": "Completed" if ok else "Error",
                                "message": message,
                                "finishedAt": now,
                            }
                        },
                    }
                    for c in pod.spec.containers
                ],
            }
        }
        self.core.patch_namespaced_pod_status(pod.metadata.name, self.namespace, patch)

    def commands(self) -> list[str]:
        """The `kirana db <verb>` (or `sh`) of every run so far, in order."""
        out = []
        for r in self.runs:
            argv = r.argv
            out.append(" ".join(argv[1:3]) if argv and argv[0] == "kirana" else Path(argv[0]).name)
        return out


# -- the operator process ------------------------------------------------------------------------------


class OperatorProcess:
    """The operator as a local process: by default `kopf run --standalone` for one namespace.

    `argv` and `env` replace the command line and add environment, e.g. the chart's Deployment
    container run as is (tests/e2e/test_operator_chart.py).
    """

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        log_dir: Path,
        *,
        argv: list[str] | None = None,
        env: dict[str, str] | None = None,
        name: str = "operator",
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_dir = log_dir
        self.argv = argv or [
            str(BIN / "kopf"),
            "run",
            "--standalone",
            "--namespace",
            namespace,
            "-m",
            "kirana.operator.handlers",
        ]
        self.extra_env = env or {}
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.metrics_port = 0

    def start(self) -> None:
        self.starts += 1
        self.metrics_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIRANA_", "KUBECONFIG"))}
        env |= self.extra_env
        env |= {"KUBECONFIG": str(self.kubeconfig), "KIRANA_OPERATOR_METRICS_PORT": str(self.metrics_port)}
        log = (self.log_dir / f"{self.name}-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            self.argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def exposition(self) -> str:
        """This process' /metrics, as Prometheus scrapes it."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def metric(self, name: str) -> float:
        """The sum of every sample of one metric on this process' /metrics (0 if absent)."""
        total = 0.0
        for line in self.exposition().splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as when a node dies."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.log_dir.glob(f"{self.name}-*.log"))
        )


# -- helpers for tests ---------------------------------------------------------------------------------


def install_crd(api: client.ApiClient) -> None:
    """Server-side apply the chart's ShopRelease and ShopBackup CRDs and wait until served."""
    ext = client.ApiextensionsV1Api(api)
    for path in CRDS:
        body = yaml.safe_load(path.read_text())
        name = body["metadata"]["name"]
        ext.patch_custom_resource_definition(
            name, body, field_manager="kirana-e2e", force=True, _content_type="application/apply-patch+yaml"
        )

        def established(name: str = name) -> bool:
            crd = ext.read_custom_resource_definition(name)
            return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

        k8s.wait_for(f"the CRD {name} to be established", established, timeout=30)


def shoprelease(name: str, version: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": version,
        "config": {"secretName": f"{name}-env"},
        "api": {"replicas": 2},
        "workers": {"replicas": 1},
        "jobs": {"podLabels": dict(EXTERNAL)},
        "backup": {"storage": {"pvc": {"claimName": f"{name}-backups"}}},
        "rollout": {"bakeSeconds": 2, "progressDeadlineSeconds": 60},
    }
    for key, value in spec.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ShopRelease",
        "metadata": {"name": name},
        "spec": base,
    }


@dataclass
class Shop:
    """One test's world: a namespace, a database, the job runner and the operator."""

    api: client.ApiClient
    namespace: str
    database_url: str
    storage: Path
    images: Images
    operator: OperatorProcess
    runner: JobRunner

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def apply(self, body: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            body["metadata"]["name"],
            body,
            field_manager="kirana-e2e",
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name))

    def wait_phase(self, name: str, phase: str, timeout: float = 120) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            obj = self.get(name)
            status = obj.get("status", {})
            seen = status.get("observedGeneration", 0) >= obj["metadata"]["generation"]
            return obj if seen and status.get("phase") == phase else None

        try:
            return k8s.wait_for(f"{name} to reach phase {phase}", probe, timeout=timeout)
        except AssertionError as exc:
            status = self.get(name).get("status")
            runs = [(r.argv, r.exit_code, r.stderr[-500:]) for r in self.runner.runs]
            raise AssertionError(
                f"{exc}\nstatus: {status}\njob runs: {runs}"
                f"\noperator log tail:\n{self.operator.logs()[-4000:]}"
            ) from None

    def condition(self, name: str, ctype: str) -> dict[str, Any]:
        conds = self.get(name).get("status", {}).get("conditions", [])
        return next(c for c in conds if c["type"] == ctype)

    def schema_revision(self) -> str | None:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None

    def table_exists(self, table: str) -> bool:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        return bool(row and row[0])

    def deployment_images(self, name: str) -> dict[str, str]:
        apps = client.AppsV1Api(self.api)
        out = {}
        for part in ("api", "workers"):
            d = apps.read_namespaced_deployment(f"{name}-{part}", self.namespace)
            out[part] = d.spec.template.spec.containers[0].image
        return out

    def describe(self, name: str) -> str:
        """What a stuck release looks like, for a failure message: its status, each Deployment's
        counts and conditions, the pods (phase, readiness, node), the Job runs and the operator
        log tail."""
        lines = [f"status: {(self.get(name).get('status') or {})}"]
        for d in client.AppsV1Api(self.api).list_namespaced_deployment(self.namespace).items:
            st = d.status
            conds = [(c.type, c.status, c.reason) for c in st.conditions or []]
            lines.append(
                f"deployment {d.metadata.name} {d.spec.template.spec.containers[0].image}: "
                f"gen {d.metadata.generation}/{st.observed_generation} replicas {st.replicas} "
                f"updated {st.updated_replicas} ready {st.ready_replicas} available "
                f"{st.available_replicas} {conds}"
            )
        for pod in client.CoreV1Api(self.api).list_namespaced_pod(self.namespace).items:
            ready = next((c.status for c in pod.status.conditions or [] if c.type == "Ready"), "?")
            lines.append(
                f"pod {pod.metadata.name} {pod.spec.containers[0].image} {pod.status.phase} "
                f"ready={ready} node={pod.spec.node_name} deleting={bool(pod.metadata.deletion_timestamp)}"
            )
        lines.append(f"job runs: {[(r.argv, r.exit_code, r.stderr[-300:]) for r in self.runner.runs]}")
        lines.append(f"operator log tail:\n{self.operator.logs()[-4000:]}")
        return "\n".join(lines)

    def pod_images(self) -> set[str]:
        """Images of api/workers pods that exist (not Job pods)."""
        pods = client.CoreV1Api(self.api).list_namespaced_pod(
            self.namespace, label_selector="app.kubernetes.io/component in (api,workers)"
        )
        return {p.spec.containers[0].image for p in pods.items if not p.metadata.deletion_timestamp}

    def event_reasons(self, name: str) -> list[str]:
        events = client.CoreV1Api(self.api).list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=ShopRelease"
        )
        return [e.reason for e in sorted(events.items, key=lambda e: e.metadata.name)]


def make_pvc(api: client.ApiClient, namespace: str, claim: str) -> str:
    """A PVC bound to a pre-made PV (the testbed has no provisioner); returns the PV name."""
    core = client.CoreV1Api(api)
    pv = f"{namespace}-{claim}"[:63]
    core.create_persistent_volume(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv, "labels": {"kirana.dev/e2e": "true"}},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "e2e-manual",
                "hostPath": {"path": f"/var/lib/e2e/{pv}"},
                "claimRef": {"namespace": namespace, "name": claim},
            },
        }
    )
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "e2e-manual",
                "volumeName": pv,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )

    def bound() -> bool:
        pvc = core.read_namespaced_persistent_volume_claim(claim, namespace)
        return pvc.status.phase == "Bound"

    # The PV controller binds on its own resync (every 15 s) when it misses the first event, and
    # a busy control plane takes longer: 30 s was seen to fall short in a clean-clone CI run.
    k8s.wait_for(f"PVC {claim} to bind", bound, timeout=120)
    return pv


def make_secret(api: client.ApiClient, namespace: str, name: str, database_url: str) -> None:
    client.CoreV1Api(api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            string_data={
                "KIRANA_DATABASE_URL": database_url,
                "KIRANA_REDIS_URL": "redis://127.0.0.1:1/0",
                "KIRANA_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
            },
        ),
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    # Outside pytest's temp dir, whose parent another pytest session may reset to mode 0700.
    data = Path(tempfile.mkdtemp(prefix="kirana-e2e-pg-"))
    server = EmbeddedPostgres(data, durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def crd_installed(api: client.ApiClient) -> None:
    install_crd(api)


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    root = tmp_path_factory.mktemp("images")
    v1 = migrations_with(root, "v1", None)
    v2 = migrations_with(root, "v2", V2_REVISION)
    broken = migrations_with(root, "broken", BROKEN_REVISION)
    return Images(
        env={
            "kirana-api:1.0.0": {"KIRANA_MIGRATIONS_DIR": str(v1)},
            "kirana-api:2.0.0": {"KIRANA_MIGRATIONS_DIR": str(v2)},
            "kirana-api:3.0.0": {"KIRANA_MIGRATIONS_DIR": str(broken)},
        }
    )


@pytest.fixture
def shop_world(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    pg_server: EmbeddedPostgres,
    crd_installed: None,
    images: Images,
    tmp_path: Path,
) -> Iterator[Shop]:
    """A namespace with a database Secret, a backup PVC and the job runner; no operator started.

    `shop.operator` is a standalone operator for the namespace; a test may replace it (before
    starting it) with another process, e.g. the chart's Deployment run as its ServiceAccount.
    The operator is stopped at the end after the ShopReleases are deleted.
    """
    db = f"shop_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    url = pg_server.admin_url.rsplit("/", 1)[0] + f"/{db}"
    make_secret(api, namespace, "shop-env", url)
    pv = make_pvc(api, namespace, "shop-backups")
    operator = OperatorProcess(kubeconfig, namespace, tmp_path)
    with JobRunner(api, namespace, images=images, storage=tmp_path / "storage") as runner:
        world = Shop(api, namespace, url, tmp_path / "storage", images, operator, runner)
        try:
            yield world
        finally:
            _delete_releases(world)
            world.operator.stop()
            with contextlib.suppress(ApiException):
                client.CoreV1Api(api).delete_persistent_volume(pv)
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{db}%",)).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def shop(shop_world: Shop) -> Shop:
    """`shop_world` with a running standalone operator."""
    shop_world.operator.start()
    return shop_world


def _delete_releases(world: Shop) -> None:
    """Delete ShopReleases and ShopBackups while the operator still runs, so it releases finalizers."""
    for plural in (PLURAL, "shopbackups"):
        with contextlib.suppress(ApiException):
            world.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, world.namespace, plural)

    def gone() -> bool:
        items = world.custom.list_namespaced_custom_object(GROUP, VERSION, world.namespace, PLURAL)["items"]
        backups = world.custom.list_namespaced_custom_object(GROUP, VERSION, world.namespace, "shopbackups")
        return not items and not backups["items"]

    try:
        k8s.wait_for("ShopReleases to be deleted", gone, timeout=30)
    except AssertionError:
        for plural in (PLURAL, "shopbackups"):
            for item in world.custom.list_namespaced_custom_object(GROUP, VERSION, world.namespace, plural)[
                "items"
            ]:
                with contextlib.suppress(ApiException):
                    world.custom.patch_namespaced_custom_object(
                        GROUP,
                        VERSION,
                        world.namespace,
                        plural,
                        item["metadata"]["name"],
                        {"metadata": {"finalizers": None}},
                    )


class DeploymentWatch:
    """Records every status of a Deployment seen on a watch, with arrival order."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self.apps = client.AppsV1Api(api)
        self.namespace = namespace
        self.name = name
        self.samples: list[tuple[float, str, int, int, int]] = []  # (t, image, spec, ready, available)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> DeploymentWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            w = watch.Watch()
            with contextlib.suppress(Exception):
                for ev in w.stream(
                    self.apps.list_namespaced_deployment,
                    self.namespace,
                    field_selector=f"metadata.name={self.name}",
                    timeout_seconds=2,
                ):
                    d = ev["object"]
                    s = d.status
                    self.samples.append(
                        (
                            time.monotonic(),
                            d.spec.template.spec.containers[0].image,
                            d.spec.replicas,
                            (s.ready_replicas or 0) if s else 0,
                            (s.available_replicas or 0) if s else 0,
                        )
                    )
                    if self._stop.is_set():
                        w.stop()


def first_time(samples: list[Any], pred: Callable[[Any], bool]) -> float | None:
    return next((s[0] for s in samples if pred(s)), None)
