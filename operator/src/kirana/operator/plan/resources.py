"""Manifests of every object a ShopRelease owns, as plain dicts (pure: no client, no I/O).

Called by `kirana.operator.plan.release` to say what should exist; `kirana.operator.apply`
sends the dicts to the API server. Names are deterministic (release name + role + the release
key), so a restarted operator finds the Jobs it already created instead of starting new ones.

Longer than 400 lines on purpose: one builder per owned object kind, kept together so that
names, labels, ports and environment stay consistent across them.
"""

from __future__ import annotations

from typing import Any

from kirana.operator.plan.model import Owner
from kirana.operator.spec import (
    BACKUP_MOUNT,
    GROUP,
    VERSION,
    PodTemplate,
    Resources,
    S3Storage,
    ShopReleaseSpec,
)

MANAGED_BY = "kirana-operator"
RELEASE_LABEL = "kirana.dev/release"
STEP_LABEL = "kirana.dev/step"
BACKUP_PATH_ANNOTATION = "kirana.dev/backup-path"
TEMPLATE_ANNOTATION = "kirana.dev/pod-template"  # digest of the PodTemplate a Deployment runs
UID = 10001
# Prometheus `/metrics` of the api and workers pods, on a port of their own (named `metrics`):
# not behind the api Service, so the ingress never reaches it; charts/kirana's PodMonitors scrape it.
METRICS_PORT = 9100

# Backup, then retention: the script of the scheduled backup CronJob and of on-demand ShopBackup
# Jobs (which set BACKUP_OUT). Backups live in one folder per origin (scheduled/, pre-upgrade/,
# on-demand/) under BACKUP_ROOT, the volume or s3://bucket/prefix; `kirana db prune` never
# deletes the newest of a folder, whatever the retention says.
# An image from before `kirana db prune` (a rollback target; volumes only) prunes with the loop
# it shipped with.
PRUNE_SCRIPT = """set -eu
kirana db backup --out "${BACKUP_OUT:-$BACKUP_ROOT/scheduled/$(date -u +%Y%m%dT%H%M%SZ).dump}" --json
if kirana db prune --help >/dev/null 2>&1; then
  kirana db prune "$BACKUP_ROOT" --keep "$RETAIN_COUNT" --max-age-days "$RETAIN_DAYS"
  exit 0
fi
for dir in "$BACKUP_ROOT/scheduled" "$BACKUP_ROOT/pre-upgrade" "$BACKUP_ROOT/on-demand"; do
  [ -d "$dir" ] || continue
  n=0
  for f in $(cd "$dir" && ls -1t -- *.dump 2>/dev/null); do
    n=$((n + 1))
    [ "$n" -eq 1 ] && continue
    if [ "$n" -gt "$RETAIN_COUNT" ] || [ -n "$(find "$dir/$f" -mmin +"$((RETAIN_DAYS * 1440))")" ]; then
      rm -f -- "$dir/$f" "$dir/$f.json"
      echo "pruned $dir/$f"
    fi
  done
done
"""


def api_name(owner: Owner) -> str:
    return f"{owner.name}-api"


def workers_name(owner: Owner) -> str:
    return f"{owner.name}-workers"


def cronjob_name(owner: Owner) -> str:
    return f"{owner.name}-backup"


def final_backup_path(owner: Owner, spec: ShopReleaseSpec, deleted_at: str) -> str:
    """Where the last backup of a deleted ShopRelease goes: final/<name>-<deletion time>.dump."""
    stamp = "".join(ch for ch in deleted_at if ch.isalnum())
    return f"{backup_root(spec)}/final/{owner.name}-{stamp}.dump"


def backup_root(spec: ShopReleaseSpec) -> str:
    """The folder backups go under: the volume's mount, or s3://bucket/prefix."""
    return spec.backup.storage.root if spec.backup.storage is not None else BACKUP_MOUNT


def job_name(owner: Owner, step: str, key: str) -> str:
    return f"{owner.name}-{step}-{key}"


def on_demand_backup_path(spec: ShopReleaseSpec, backup_name: str) -> str:
    return f"{backup_root(spec)}/on-demand/{backup_name}.dump"


def on_demand_job_name(backup_name: str) -> str:
    return f"shopbackup-{backup_name}"


def pre_upgrade_backup_path(owner: Owner, spec: ShopReleaseSpec, version: str, key: str) -> str:
    return f"{backup_root(spec)}/pre-upgrade/{owner.name}-{version}-{key}.dump"


def labels(owner: Owner, component: str, version: str | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": "kirana",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        RELEASE_LABEL: owner.name,
    }
    if version:
        out["app.kubernetes.io/version"] = version
    return out


def selector(owner: Owner, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "kirana",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": component,
    }


def owner_reference(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(owner: Owner, name: str, component: str, version: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner, component, version),
        "ownerReferences": [owner_reference(owner)],
    }


def _resources(r: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.requests:
        out["requests"] = dict(r.requests)
    if r.limits:
        out["limits"] = dict(r.limits)
    return out


def _env(spec: ShopReleaseSpec, *, backups: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    env_from: list[dict[str, Any]] = [{"secretRef": {"name": spec.config.secret_name}}]
    if spec.config.config_map_name:
        env_from.insert(0, {"configMapRef": {"name": spec.config.config_map_name}})
    env: list[dict[str, Any]] = [{"name": e.name, "value": e.value} for e in spec.config.env]
    if backups:
        env.append({"name": "KIRANA_BACKUP_DIR", "value": backup_root(spec)})
        s3 = spec.backup.storage.s3 if spec.backup.storage else None
        if s3 is not None:
            env += _s3_env(s3)
    return env_from, env


def _s3_env(s3: S3Storage) -> list[dict[str, Any]]:
    """What `kirana.api.db.objectstore` reads; the keys come straight from the credentials Secret."""
    env: list[dict[str, Any]] = [
        {"name": "KIRANA_BACKUP_S3_REGION", "value": s3.region},
        {"name": "KIRANA_BACKUP_S3_PATH_STYLE", "value": "true" if s3.force_path_style else "false"},
    ]
    if s3.endpoint:
        env.append({"name": "KIRANA_BACKUP_S3_ENDPOINT", "value": s3.endpoint})
    if s3.server_side_encryption:
        env.append({"name": "KIRANA_BACKUP_S3_SSE", "value": s3.server_side_encryption.value})
    if s3.kms_key_id:
        env.append({"name": "KIRANA_BACKUP_S3_SSE_KMS_KEY_ID", "value": s3.kms_key_id})
    for key, optional in (
        ("AWS_ACCESS_KEY_ID", False),
        ("AWS_SECRET_ACCESS_KEY", False),
        ("AWS_SESSION_TOKEN", True),
    ):
        ref = {"name": s3.credentials_secret, "key": key, **({"optional": True} if optional else {})}
        env.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
    return env


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_security() -> dict[str, Any]:
    return {
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_spec(
    spec: ShopReleaseSpec, image: str, container: dict[str, Any], *, backups: bool, restart: str
) -> dict[str, Any]:
    env_from, env = _env(spec, backups=backups)
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if backups and spec.backup.storage and spec.backup.storage.pvc:
        volumes.append(
            {"name": "backups", "persistentVolumeClaim": {"claimName": spec.backup.storage.pvc.claim_name}}
        )
        mounts.append({"name": "backups", "mountPath": BACKUP_MOUNT})
    pod: dict[str, Any] = {
        "restartPolicy": restart,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": _pod_security(),
        "containers": [
            {
                "name": "kirana",
                "image": image,
                "imagePullPolicy": spec.image.pull_policy,
                "envFrom": env_from,
                "env": env,
                "volumeMounts": mounts,
                "securityContext": _container_security(),
                "terminationMessagePolicy": "FallbackToLogsOnError",
                **container,
            }
        ],
        "volumes": volumes,
    }
    if spec.image.pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in spec.image.pull_secrets]
    return pod


def api_deployment(
    owner: Owner, spec: ShopReleaseSpec, image: str, version: str, replicas: int | None = None
) -> dict[str, Any]:
    port = spec.api.port
    ro = spec.rollout
    container = {
        "command": ["kirana"],
        # The metrics port goes by environment, not by a flag: an image from before the flag
        # (a rollback target) ignores the variable instead of refusing to start.
        "args": ["serve", "--port", str(port)],
        "ports": [
            {"name": "http", "containerPort": port},
            {"name": "metrics", "containerPort": METRICS_PORT},
        ],
        "resources": _resources(spec.api.resources),
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/livez", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "startupProbe": {
            "httpGet": {"path": "/livez", "port": "http"},
            "periodSeconds": 2,
            "failureThreshold": 60,
        },
        # Keep serving while endpoints and load balancers stop sending new requests.
        "lifecycle": {"preStop": {"sleep": {"seconds": ro.pre_stop_seconds}}},
    }
    count = spec.api.replicas if replicas is None else replicas
    deployment = _deployment(owner, spec, api_name(owner), "api", image, version, count, container)
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append({"name": "KIRANA_METRICS_PORT", "value": str(METRICS_PORT)})
    return deployment


def workers_deployment(
    owner: Owner, spec: ShopReleaseSpec, image: str, version: str, replicas: int | None = None
) -> dict[str, Any]:
    container = {
        "command": ["python", "-m", "kirana.workers"],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        "resources": _resources(spec.workers.resources),
    }
    count = spec.workers.replicas if replicas is None else replicas
    deployment = _deployment(owner, spec, workers_name(owner), "workers", image, version, count, container)
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append({"name": "KIRANA_WORKER_METRICS_PORT", "value": str(METRICS_PORT)})
    return deployment


def _deployment(
    owner: Owner,
    spec: ShopReleaseSpec,
    name: str,
    component: str,
    image: str,
    version: str,
    replicas: int,
    container: dict[str, Any],
) -> dict[str, Any]:
    ro = spec.rollout
    pod_labels = {
        **(spec.api.pod_labels if component == "api" else spec.workers.pod_labels),
        **labels(owner, component, version),
    }
    pod = _pod_spec(spec, image, container, backups=False, restart="Always")
    pod["terminationGracePeriodSeconds"] = ro.pre_stop_seconds + 30
    pod["tolerations"] = _node_loss_tolerations(
        (spec.api if component == "api" else spec.workers).node_loss_toleration_seconds
    )
    meta = metadata(owner, name, component, version)
    # On the Deployment, not its pod template (adding it there would restart every pod).
    meta["annotations"] = {TEMPLATE_ANNOTATION: PodTemplate.of(spec).digest()}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": ro.progress_deadline_seconds,
            "selector": {"matchLabels": selector(owner, component)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": ro.max_surge, "maxUnavailable": ro.max_unavailable},
            },
            "template": {"metadata": {"labels": pod_labels}, "spec": pod},
        },
    }


def _node_loss_tolerations(seconds: int) -> list[dict[str, Any]]:
    """Stay this long on a node that stopped answering, then be evicted (and replaced on a live
    node by the Deployment) instead of the 300 s the API server's admission plugin adds."""
    return [
        {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
    ]


def api_service(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, api_name(owner), "api"),
        "spec": {
            "selector": selector(owner, "api"),
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            "type": "ClusterIP",
        },
    }


def disruption_budget(owner: Owner, component: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(owner, name, component),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(owner, component)}},
    }


def db_job(
    owner: Owner,
    spec: ShopReleaseSpec,
    *,
    step: str,
    key: str,
    image: str,
    version: str,
    args: list[str],
    timeout_seconds: int,
    backoff_limit: int = 0,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Job running `kirana <args>` once with the release's configuration and the backup volume."""
    name = job_name(owner, step, key)
    meta = metadata(owner, name, step, version)
    meta["labels"][STEP_LABEL] = step
    if annotations:
        meta["annotations"] = dict(annotations)
    container = {"command": ["kirana"], "args": args, "resources": _resources(spec.jobs.resources)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": backoff_limit,
            "activeDeadlineSeconds": timeout_seconds,
            "ttlSecondsAfterFinished": spec.jobs.ttl_seconds_after_finished,
            "template": {
                "metadata": {"labels": {**spec.jobs.pod_labels, **meta["labels"]}},
                "spec": _pod_spec(spec, image, container, backups=True, restart="Never"),
            },
        },
    }


def backup_cronjob(owner: Owner, spec: ShopReleaseSpec, image: str, version: str) -> dict[str, Any]:
    """Scheduled `kirana db backup` into scheduled/, then pruning both backup folders to retention."""
    assert spec.backup.schedule is not None
    ret = spec.backup.retention
    meta = metadata(owner, cronjob_name(owner), "scheduled-backup", version)
    container = {
        "command": ["sh", "-c", PRUNE_SCRIPT],
        "resources": _resources(spec.jobs.resources),
    }
    pod = _pod_spec(spec, image, container, backups=True, restart="Never")
    pod["containers"][0]["env"] = [
        *pod["containers"][0]["env"],
        {"name": "BACKUP_ROOT", "value": backup_root(spec)},
        {"name": "RETAIN_COUNT", "value": str(ret.count)},
        {"name": "RETAIN_DAYS", "value": str(ret.max_age_days)},
    ]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta,
        "spec": {
            "schedule": spec.backup.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": meta["labels"]},
                "spec": {
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": spec.backup.timeout_seconds,
                    "ttlSecondsAfterFinished": spec.jobs.ttl_seconds_after_finished,
                    "template": {
                        "metadata": {"labels": {**spec.jobs.pod_labels, **meta["labels"]}},
                        "spec": pod,
                    },
                },
            },
        },
    }


def on_demand_backup_job(
    backup: Owner, release: Owner, spec: ShopReleaseSpec, image: str, version: str
) -> dict[str, Any]:
    """The Job of a ShopBackup: `kirana db backup --out on-demand/<name>.dump`, then retention.

    Owned by the ShopBackup (deleting it deletes the Job, never the archive); labelled with the
    release so `kubectl get jobs -l kirana.dev/release=<name>` shows every Job of a shop.
    """
    ret = spec.backup.retention
    name = on_demand_job_name(backup.name)
    meta = metadata(backup, name, "on-demand-backup", version)
    meta["labels"][RELEASE_LABEL] = release.name
    meta["labels"][STEP_LABEL] = "on-demand-backup"
    container = {"command": ["sh", "-c", PRUNE_SCRIPT], "resources": _resources(spec.jobs.resources)}
    pod = _pod_spec(spec, image, container, backups=True, restart="Never")
    pod["containers"][0]["env"] = [
        *pod["containers"][0]["env"],
        {"name": "BACKUP_ROOT", "value": backup_root(spec)},
        {"name": "BACKUP_OUT", "value": on_demand_backup_path(spec, backup.name)},
        {"name": "RETAIN_COUNT", "value": str(ret.count)},
        {"name": "RETAIN_DAYS", "value": str(ret.max_age_days)},
    ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.backup.timeout_seconds,
            "ttlSecondsAfterFinished": spec.jobs.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": {**spec.jobs.pod_labels, **meta["labels"]}}, "spec": pod},
        },
    }
