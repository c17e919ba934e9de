"""Backups outside a release: on-demand ShopBackups, and the last backup of a deleted ShopRelease.

A ShopBackup is taken once: Pending (waiting for its ShopRelease to run a version) -> Running (its
Job exists) -> Completed (name, time, size, sha256, schema revision recorded) or Failed. Called by
`kirana.operator.apply.reconcile_backup`. The final backup (`spec.backup.onDelete`) is decided by
`decide_final_backup`, called by `kirana.operator.apply.final_backup` while the deletion waits.
Pure, like `kirana.operator.plan.release`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kirana.operator.plan import resources as res
from kirana.operator.plan.model import Event, JobPhase, JobState, Owner, iso, parse_time
from kirana.operator.spec import BackupPhase, ShopBackupStatus, ShopReleaseSpec, ShopReleaseStatus

WAIT_S = 30.0
RUNNING_S = 10.0


@dataclass(frozen=True)
class ReleaseView:
    """The ShopRelease a backup names, as far as the backup cares."""

    owner: Owner
    spec: ShopReleaseSpec
    status: ShopReleaseStatus


@dataclass(frozen=True)
class BackupDecision:
    status: ShopBackupStatus
    create_jobs: tuple[dict[str, Any], ...] = ()
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None  # None: finished, nothing more to do


def decide_backup(
    backup: Owner,
    status: ShopBackupStatus,
    release: ReleaseView | None,
    job: JobState | None,
    now: datetime,
) -> BackupDecision:
    if status.phase in (BackupPhase.COMPLETED, BackupPhase.FAILED):
        return BackupDecision(status=status)
    if job is None and status.job is None:
        return _start(backup, status, release, now)
    name = status.job or res.on_demand_job_name(backup.name)
    if job is None or job.phase == JobPhase.RUNNING:
        # Running, or our Job vanished (deleted by hand) before finishing: create it again.
        recreate: tuple[dict[str, Any], ...] = ()
        if job is None and release is not None and status.image:
            version = release.status.current_version or release.spec.version
            recreate = (res.on_demand_backup_job(backup, release.owner, release.spec, status.image, version),)
        running = status.model_copy(update={"phase": BackupPhase.RUNNING, "job": name})
        return BackupDecision(status=running, create_jobs=recreate, requeue_after=RUNNING_S)
    if job.phase == JobPhase.FAILED:
        failed = status.model_copy(
            update={
                "phase": BackupPhase.FAILED,
                "completed_at": iso(now),
                "message": f"backup Job {name} failed: {job.message}",
            }
        )
        event = Event("Warning", "BackupFailed", failed.message)
        return BackupDecision(status=failed, events=(event,))
    r = job.result or {}
    done = status.model_copy(
        update={
            "phase": BackupPhase.COMPLETED,
            "completed_at": str(r.get("created_at") or iso(now)),
            "size": r.get("size"),
            "sha256": r.get("sha256"),
            "schema_revision": r.get("schema_revision"),
            "message": f"backup written to {status.path}",
        }
    )
    size = f"{done.size} bytes" if done.size is not None else "size unknown"
    return BackupDecision(
        status=done, events=(Event("Normal", "BackupCompleted", f"{status.path} ({size})"),)
    )


def _start(
    backup: Owner, status: ShopBackupStatus, release: ReleaseView | None, now: datetime
) -> BackupDecision:
    def pending(message: str) -> BackupDecision:
        return BackupDecision(
            status=status.model_copy(update={"phase": BackupPhase.PENDING, "message": message}),
            requeue_after=WAIT_S,
        )

    if release is None:
        return pending("the ShopRelease it names does not exist")
    if release.spec.backup.storage is None:
        failed = status.model_copy(
            update={
                "phase": BackupPhase.FAILED,
                "message": f"ShopRelease {release.owner.name} has no backup.storage to write to",
            }
        )
        return BackupDecision(status=failed, events=(Event("Warning", "BackupFailed", failed.message),))
    image, version = release.status.current_image, release.status.current_version
    if not image or not version:
        return pending(f"ShopRelease {release.owner.name} has no running version yet")
    path = res.on_demand_backup_path(release.spec, backup.name)
    job = res.on_demand_backup_job(backup, release.owner, release.spec, image, version)
    running = status.model_copy(
        update={
            "phase": BackupPhase.RUNNING,
            "job": job["metadata"]["name"],
            "path": path,
            "image": image,
            "started_at": iso(now),
            "message": f"backing up with {image}",
        }
    )
    event = Event("Normal", "BackupStarted", f"backing up the database of {release.owner.name} to {path}")
    return BackupDecision(status=running, create_jobs=(job,), events=(event,), requeue_after=RUNNING_S)


# -- the last backup of a deleted ShopRelease -------------------------------------------------------


@dataclass(frozen=True)
class FinalBackup:
    done: bool  # the deletion may go on
    message: str
    create_job: dict[str, Any] | None = None  # the Job to create (its events only if it is new)
    events: tuple[Event, ...] = ()


def final_backup_wanted(spec: ShopReleaseSpec, status: ShopReleaseStatus) -> bool:
    """`spec.backup.onDelete` asks for one, there is storage, and something was installed."""
    return bool(
        spec.backup.on_delete
        and spec.backup.storage is not None
        and status.current_image
        and status.current_version
    )


def final_backup_job_name(owner: Owner) -> str:
    return res.job_name(owner, "final-backup", owner.uid[:8])


def decide_final_backup(
    owner: Owner,
    spec: ShopReleaseSpec,
    status: ShopReleaseStatus,
    *,
    deleted_at: str | None,
    job: JobState | None,
    now: datetime,
) -> FinalBackup:
    """The last backup of a ShopRelease being deleted: start its Job with the running image, then
    report until it finishes, or until `backup.timeoutSeconds` after the deletion began (a
    namespace being deleted takes the Job's Secret and volume with it: the deletion must not hang
    forever). Events say how it went; the database itself is untouched."""
    if not spec.backup.on_delete or spec.backup.storage is None:
        return FinalBackup(True, "no final backup asked for")
    if not status.current_image or not status.current_version:
        return FinalBackup(True, "nothing was installed")
    deleted = deleted_at or iso(now)
    job_name = final_backup_job_name(owner)
    path = res.final_backup_path(owner, spec, deleted)
    if job is None:
        body = res.db_job(
            owner,
            spec,
            step="final-backup",
            key=owner.uid[:8],
            image=status.current_image,
            version=status.current_version,
            args=["db", "backup", "--out", path, "--json"],
            timeout_seconds=spec.backup.timeout_seconds,
        )
        # Not owned by the ShopRelease: its record outlives it (ttlSecondsAfterFinished cleans up).
        body["metadata"].pop("ownerReferences", None)
        started = Event("Normal", "FinalBackupStarted", f"taking a last backup to {path}")
        return FinalBackup(False, f"final backup Job {job_name} started", create_job=body, events=(started,))
    if job.phase == JobPhase.SUCCEEDED:
        done = Event("Normal", "FinalBackupCompleted", f"last backup written to {path}")
        return FinalBackup(True, f"last backup written to {path}", events=(done,))
    waited = (now - parse_time(deleted.replace("Z", "+00:00"))).total_seconds()
    if job.phase == JobPhase.FAILED or waited > spec.backup.timeout_seconds:
        why = job.message or "failed" if job.phase == JobPhase.FAILED else f"not done after {int(waited)} s"
        failed = Event("Warning", "FinalBackupFailed", f"final backup Job {job_name}: {why}; deleting anyway")
        return FinalBackup(True, f"final backup failed: {why}", events=(failed,))
    return FinalBackup(False, f"final backup Job {job_name} running")
