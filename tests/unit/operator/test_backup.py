"""On-demand backups and restores, table-driven on the pure planners (no cluster):
`plan.backup.decide_backup` for a ShopBackup, and the `spec.restore` path of `plan.release.decide`.
tests/e2e/test_operator_backup.py proves the same against a real API server and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kirana.operator.plan.backup import ReleaseView, decide_backup
from kirana.operator.plan.model import DeploymentState, JobPhase, JobState, Observed, Owner, iso
from kirana.operator.plan.release import decide
from kirana.operator.plan.restore import restore_job_name
from kirana.operator.spec import (
    BackupPhase,
    Outcome,
    RestoreRecord,
    RestoreStep,
    ShopBackupStatus,
    ShopReleaseStatus,
    parse_spec,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RELEASE = Owner(name="shop", namespace="prod", uid="u-1", generation=2)
BACKUP = Owner(name="before-sale", namespace="prod", uid="b-1", kind="ShopBackup")
V1 = "kirana-api:1.0.0"
JOB = "shopbackup-before-sale"
PATH = "/backups/on-demand/before-sale.dump"


def release_spec(**over: Any) -> Any:
    raw: dict[str, Any] = {
        "version": "1.0.0",
        "config": {"secretName": "env"},
        "backup": {"storage": {"pvc": {"claimName": "backups"}}, "retention": {"count": 3, "maxAgeDays": 5}},
        "jobs": {"podLabels": {"team": "shop"}},
    }
    raw.update(over)
    return parse_spec(raw)


def running_v1() -> ShopReleaseStatus:
    return ShopReleaseStatus(current_version="1.0.0", current_image=V1, schema_revision="r1")


def view(spec: Any = None, status: ShopReleaseStatus | None = None) -> ReleaseView:
    return ReleaseView(owner=RELEASE, spec=spec or release_spec(), status=status or running_v1())


STARTED = ShopBackupStatus(phase=BackupPhase.RUNNING, job=JOB, path=PATH, image=V1, started_at=iso(NOW))


@dataclass
class BackupCase:
    id: str
    status: ShopBackupStatus
    release: ReleaseView | None
    job: JobState | None
    phase: BackupPhase
    creates: bool = False
    events: list[str] = field(default_factory=list)
    message: str = ""
    finished: bool = False  # no requeue: nothing more will happen


BACKUP_CASES = [
    BackupCase(
        "no such release waits", ShopBackupStatus(), None, None, BackupPhase.PENDING, message="does not exist"
    ),
    BackupCase(
        "release not installed yet waits",
        ShopBackupStatus(),
        view(status=ShopReleaseStatus()),
        None,
        BackupPhase.PENDING,
        message="no running version",
    ),
    BackupCase(
        "release without storage fails for good",
        ShopBackupStatus(),
        view(spec=release_spec(backup={"beforeUpgrade": False})),
        None,
        BackupPhase.FAILED,
        events=["BackupFailed"],
        message="no backup.storage",
        finished=True,
    ),
    BackupCase(
        "a new backup starts its Job with the running image",
        ShopBackupStatus(),
        view(),
        None,
        BackupPhase.RUNNING,
        creates=True,
        events=["BackupStarted"],
    ),
    BackupCase(
        "a running Job is waited for",
        STARTED,
        view(),
        JobState(JOB, JobPhase.RUNNING),
        BackupPhase.RUNNING,
    ),
    BackupCase(
        "a Job deleted before it finished is created again",
        STARTED,
        view(),
        None,
        BackupPhase.RUNNING,
        creates=True,
    ),
    BackupCase(
        "a finished Job records the archive",
        STARTED,
        view(),
        JobState(JOB, JobPhase.SUCCEEDED, {"size": 42, "sha256": "ab" * 32, "schema_revision": "r1"}),
        BackupPhase.COMPLETED,
        events=["BackupCompleted"],
        finished=True,
    ),
    BackupCase(
        "a failed Job fails the backup with its last words",
        STARTED,
        view(),
        JobState(JOB, JobPhase.FAILED, message="pg_dump: connection refused"),
        BackupPhase.FAILED,
        events=["BackupFailed"],
        message="connection refused",
        finished=True,
    ),
    BackupCase(
        "a completed backup is never taken again",
        STARTED.model_copy(update={"phase": BackupPhase.COMPLETED}),
        view(),
        None,
        BackupPhase.COMPLETED,
        finished=True,
    ),
]


@pytest.mark.parametrize("case", BACKUP_CASES, ids=[c.id for c in BACKUP_CASES])
def test_decide_backup(case: BackupCase) -> None:
    d = decide_backup(BACKUP, case.status, case.release, case.job, NOW)
    assert d.status.phase == case.phase
    assert bool(d.create_jobs) == case.creates
    assert [e.reason for e in d.events] == case.events
    assert case.message in d.status.message
    assert (d.requeue_after is None) == case.finished


def test_backup_job_writes_on_demand_applies_retention_and_is_owned_by_the_backup() -> None:
    d = decide_backup(BACKUP, ShopBackupStatus(), view(), None, NOW)
    (job,) = d.create_jobs
    assert job["metadata"]["name"] == JOB
    assert job["metadata"]["ownerReferences"][0]["kind"] == "ShopBackup"
    assert job["metadata"]["labels"]["kirana.dev/release"] == "shop"
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"]["team"] == "shop"
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BACKUP_OUT"] == PATH and env["RETAIN_COUNT"] == "3" and env["RETAIN_DAYS"] == "5"
    assert env["BACKUP_ROOT"] == "/backups"
    assert container["image"] == V1
    assert 'kirana db prune "$BACKUP_ROOT"' in container["command"][2]
    assert d.status.path == PATH and d.status.image == V1


# -- restore ------------------------------------------------------------------------------------------

RESTORE = {"backupName": "before-sale", "requestId": "req-1"}
COMPLETED = ShopBackupStatus(phase=BackupPhase.COMPLETED, path=PATH, schema_revision="r1")


def dep(image: str, replicas: int, total: int | None = None) -> DeploymentState:
    n = replicas if total is None else total
    return DeploymentState(image=image, replicas=replicas, total=n, updated=n, ready=n, available=n)


UP = {"api": dep(V1, 2), "workers": dep(V1, 1)}
DRAINING = {"api": dep(V1, 0, total=1), "workers": dep(V1, 0)}
DOWN = {"api": dep(V1, 0), "workers": dep(V1, 0)}


def restoring(step: RestoreStep) -> ShopReleaseStatus:
    rec = RestoreRecord(
        request_id="req-1",
        backup_name="before-sale",
        path=PATH,
        step=step,
        started_at=iso(NOW - timedelta(minutes=1)),
    )
    return running_v1().model_copy(update={"last_restore": rec})


RESTORE_JOB = restore_job_name(RELEASE, "req-1")


@dataclass
class RestoreCase:
    id: str
    status: ShopReleaseStatus
    pods: dict[str, DeploymentState]
    phase: str
    replicas: int | None  # of the declared api Deployment (None: the operator keeps its hands off)
    step: RestoreStep | None = None  # None: finished
    outcome: Outcome | None = None
    jobs: dict[str, JobState] = field(default_factory=dict)
    source: ShopBackupStatus | None = COMPLETED
    source_release: str | None = "shop"  # spec.releaseRef.name of that ShopBackup
    spec: dict[str, Any] = field(default_factory=lambda: {"restore": RESTORE})
    creates: list[str] = field(default_factory=list)
    message: str = ""
    terminating: int = 0  # pods the Deployments no longer count but that still exist


RESTORE_CASES = [
    RestoreCase(
        "a request scales the app down first", running_v1(), UP, "Restoring", 0, RestoreStep.SCALE_DOWN
    ),
    RestoreCase(
        "nothing restores while pods are still there",
        restoring(RestoreStep.SCALE_DOWN),
        DRAINING,
        "Restoring",
        0,
        RestoreStep.SCALE_DOWN,
    ),
    RestoreCase(
        "nothing restores while a terminating pod may still write",
        restoring(RestoreStep.SCALE_DOWN),
        DOWN,
        "Restoring",
        0,
        RestoreStep.SCALE_DOWN,
        terminating=1,
        message="waiting for 1 pod(s) of the app to terminate",
    ),
    RestoreCase(
        "with no pods left the restore Job runs with the running image",
        restoring(RestoreStep.SCALE_DOWN),
        DOWN,
        "Restoring",
        0,
        RestoreStep.RESTORE,
        creates=[f"db restore {PATH} --json"],
    ),
    RestoreCase(
        "a restored database brings the app back",
        restoring(RestoreStep.RESTORE),
        DOWN,
        "Restoring",
        2,
        RestoreStep.SCALE_UP,
        jobs={RESTORE_JOB: JobState(RESTORE_JOB, JobPhase.SUCCEEDED, {"schema_revision": "r1"})},
    ),
    RestoreCase(
        "a failed restore brings the app back too, and says so",
        restoring(RestoreStep.RESTORE),
        DOWN,
        "Restoring",
        2,
        RestoreStep.SCALE_UP,
        jobs={RESTORE_JOB: JobState(RESTORE_JOB, JobPhase.FAILED, message="row counts differ")},
        message="row counts differ",
    ),
    RestoreCase(
        "back at full strength the restore succeeded",
        restoring(RestoreStep.SCALE_UP),
        UP,
        "Ready",
        2,
        None,
        Outcome.SUCCEEDED,
    ),
    RestoreCase(
        "an unknown backup is refused without touching the app",
        running_v1(),
        UP,
        "Ready",
        2,
        None,
        Outcome.FAILED,
        source=None,
        message="does not exist",
    ),
    RestoreCase(
        "a backup of another ShopRelease is refused without touching the app",
        running_v1(),
        UP,
        "Ready",
        2,
        None,
        Outcome.FAILED,
        source_release="other-shop",
        message="backup of ShopRelease other-shop, not of shop",
    ),
    RestoreCase(
        "an unfinished backup is refused",
        running_v1(),
        UP,
        "Ready",
        2,
        None,
        Outcome.FAILED,
        source=ShopBackupStatus(phase=BackupPhase.RUNNING, path=PATH),
        message="Running, not Completed",
    ),
    RestoreCase(
        "a backup of another schema revision is refused",
        running_v1(),
        UP,
        "Ready",
        2,
        None,
        Outcome.FAILED,
        source=COMPLETED.model_copy(update={"schema_revision": "r0"}),
        message="schema revision r0",
    ),
    RestoreCase(
        "paused: a restore does not start",
        running_v1(),
        UP,
        "Paused",
        None,
        None,
        None,
        spec={"restore": RESTORE, "paused": True},
    ),
]


@pytest.mark.parametrize("case", RESTORE_CASES, ids=[c.id for c in RESTORE_CASES])
def test_restore(case: RestoreCase) -> None:
    spec = release_spec(**case.spec)
    observed = Observed(
        jobs=case.jobs,
        api=case.pods["api"],
        workers=case.pods["workers"],
        restore_source=case.source,
        restore_source_release=case.source_release if case.source else None,
        app_pods=sum(d.total for d in case.pods.values()) + case.terminating,
    )
    d = decide(RELEASE, spec, case.status, observed, NOW)
    assert d.status.phase == case.phase
    rec = d.status.last_restore
    if case.step is None and case.outcome is None:
        assert rec is None
    else:
        assert rec is not None
        assert (rec.step if rec.outcome is None else None) == case.step
        assert rec.outcome == case.outcome
        assert case.message in rec.message
    api = [
        a["spec"]["replicas"]
        for a in d.apply
        if a["kind"] == "Deployment" and a["metadata"]["name"] == "shop-api"
    ]
    assert api == ([] if case.replicas is None else [case.replicas])
    assert [
        " ".join(j["spec"]["template"]["spec"]["containers"][0]["args"]) for j in d.create_jobs
    ] == case.creates


def test_a_restore_waits_for_a_release_in_flight_and_a_release_waits_for_a_restore() -> None:
    # A new version while a restore runs: the release does not start until it is over.
    d = decide(
        RELEASE,
        release_spec(version="2.0.0", restore=RESTORE),
        restoring(RestoreStep.SCALE_DOWN),
        Observed(
            api=DOWN["api"], workers=DOWN["workers"], restore_source=COMPLETED, restore_source_release="shop"
        ),
        NOW,
    )
    assert d.status.phase == "Restoring" and d.status.release is None


def test_the_same_request_id_is_not_restored_twice() -> None:
    done = restoring(RestoreStep.SCALE_UP)
    assert done.last_restore is not None
    finished = done.model_copy(
        update={"last_restore": done.last_restore.model_copy(update={"outcome": Outcome.SUCCEEDED})}
    )
    observed = Observed(
        api=UP["api"], workers=UP["workers"], restore_source=COMPLETED, restore_source_release="shop"
    )
    d = decide(RELEASE, release_spec(restore=RESTORE), finished, observed, NOW)
    assert d.status.phase == "Ready" and d.status.last_restore == finished.last_restore and not d.create_jobs
