"""The planner's vocabulary: what was observed in the cluster, and what should happen next.

Built by `kirana.operator.apply` (observations) and by `kirana.operator.plan.release` (decisions).
Plain frozen dataclasses so tests can write them out in tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from kirana.operator.spec import KIND, ShopBackupStatus, ShopReleaseStatus


def iso(t: datetime) -> str:
    """A status timestamp: RFC 3339 in UTC with a `Z`, as Kubernetes writes them."""
    return t.isoformat().replace("+00:00", "Z")


def parse_time(s: str) -> datetime:
    return datetime.fromisoformat(s)


class JobPhase(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class JobState:
    name: str
    phase: JobPhase
    result: dict[str, Any] | None = None  # the `--json` output of the finished command
    message: str = ""  # why it failed (Job condition or the pod's termination message)


@dataclass(frozen=True)
class DeploymentState:
    image: str
    replicas: int  # spec.replicas
    generation: int = 1
    observed_generation: int = 1
    total: int = 0  # status.replicas: pods of every revision
    updated: int = 0
    ready: int = 0
    available: int = 0
    deadline_exceeded: bool = False
    template: str | None = None  # the PodTemplate digest the operator stamped on it

    def rolled_out(self, image: str, replicas: int) -> bool:
        """Every pod runs `image`, is available, and no pod of an older revision is left."""
        return (
            self.image == image
            and self.replicas == replicas
            and self.observed_generation >= self.generation
            and self.updated == replicas
            and self.available == replicas
            and self.total == replicas
        )


def ready(dep: DeploymentState | None, image: str, replicas: int) -> bool:
    """The Deployment exists and has rolled out `image` on all of `replicas`."""
    return dep is not None and dep.rolled_out(image, replicas)


@dataclass(frozen=True)
class HealthSample:
    """One evaluation of the Prometheus health gate query."""

    value: float | None  # None: the query returned no data
    error: str | None = None  # the query could not be evaluated at all


@dataclass(frozen=True)
class Observed:
    jobs: dict[str, JobState] = field(default_factory=dict)
    api: DeploymentState | None = None
    workers: DeploymentState | None = None
    health: HealthSample | None = None
    # The ShopBackup named by spec.restore while a restore is requested or in flight
    # (None: not asked for, or no such ShopBackup).
    restore_source: ShopBackupStatus | None = None
    # That ShopBackup's spec.releaseRef.name: a restore only takes a backup of this ShopRelease.
    restore_source_release: str | None = None
    # Pods of the app (api and workers) that still exist, terminating ones included: a
    # Deployment's status stops counting a pod once it is terminating, but the pod may still
    # write until it is gone. Looked at only while a restore scales the app down (else None).
    app_pods: int | None = None
    # (kind, name) of the objects the spec names that do not exist; looked at only when a release
    # is about to start (`plan.release.wants_reference_check`).
    missing: tuple[tuple[str, str], ...] = ()
    # The ShopRelease's `kirana.dev/abort` and `kirana.dev/retry` annotations (`kubectl kirana
    # abort|retry`): a value the release has not acted on yet asks for an abort or a retry.
    abort_request: str | None = None
    retry_request: str | None = None


@dataclass(frozen=True)
class Owner:
    """The object (a ShopRelease, or a ShopBackup for its Job) that owns what is created for it."""

    name: str
    namespace: str
    uid: str
    generation: int = 1
    kind: str = KIND


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    status: ShopReleaseStatus
    create_jobs: tuple[dict[str, Any], ...] = ()  # created once; an existing Job of that name is kept
    apply: tuple[dict[str, Any], ...] = ()  # server-side applied every reconcile
    delete: tuple[tuple[str, str], ...] = ()  # (kind, name) to delete if present
    events: tuple[Event, ...] = ()
    requeue_after: float = 60.0
