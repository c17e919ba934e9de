"""Restores asked for by `spec.restore`: scale the app to 0, run `kirana db restore <backup>`, scale
it back; one per requestId.

Called by `kirana.operator.plan.release.decide` on every wake-up, before the release itself (a
restore in flight holds releases back, and a release in flight holds a new restore back). Pure, like
the rest of `kirana.operator.plan`: the restore's progress lives in `status.lastRestore`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kirana.operator.plan import resources as res
from kirana.operator.plan.model import Event, JobPhase, Observed, Owner, iso, ready
from kirana.operator.spec import (
    BackupPhase,
    Outcome,
    RestoreRecord,
    RestoreStep,
    ShopReleaseSpec,
    ShopReleaseStatus,
    release_key,
)


def restore_job_name(owner: Owner, request_id: str) -> str:
    return res.job_name(owner, "restore", "r" + release_key("restore", request_id)[:7])


@dataclass
class RestorePlan:
    """What one pass over `spec.restore` decided: the new `status.lastRestore`, and its effects."""

    owner: Owner
    spec: ShopReleaseSpec
    status: ShopReleaseStatus
    observed: Observed
    now: datetime
    record: RestoreRecord | None = None
    create_jobs: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    schema_revision: str | None = None  # the database's revision once restored (None: unchanged)

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Event("Warning" if warning else "Normal", reason, message))

    @property
    def in_flight(self) -> bool:
        return self.record is not None and self.record.outcome is None


def plan_restore(
    owner: Owner,
    spec: ShopReleaseSpec,
    status: ShopReleaseStatus,
    observed: Observed,
    now: datetime,
    *,
    release_in_flight: bool,
) -> RestorePlan:
    """The next step of the restore `spec.restore` asks for (or of the one in flight).

    Starts only between releases (never races one) and not while paused; once started it runs to
    the end. Refuses, before touching anything, a backup of another ShopRelease, one that is not
    Completed, or one whose schema revision differs from the database's (the running code expects
    the current revision).
    """
    plan = RestorePlan(owner=owner, spec=spec, status=status, observed=observed, now=now)
    plan.record = _step(plan, release_in_flight)
    return plan


def _step(plan: RestorePlan, release_in_flight: bool) -> RestoreRecord | None:
    spec, status, observed = plan.spec, plan.status, plan.observed
    rec, req = status.last_restore, spec.restore
    if rec is None or rec.outcome is not None:
        wanted = req is not None and (rec is None or rec.request_id != req.request_id)
        if not wanted or release_in_flight or spec.paused:
            return rec
        assert req is not None
        rec = RestoreRecord(
            request_id=req.request_id,
            backup_name=req.backup_name,
            step=RestoreStep.SCALE_DOWN,
            started_at=iso(plan.now),
        )
        source = observed.restore_source
        refusal = ""
        if not status.current_image:
            refusal = "nothing is installed yet"
        elif source is None:
            refusal = f"ShopBackup {req.backup_name} does not exist"
        elif observed.restore_source_release != plan.owner.name:
            refusal = (
                f"ShopBackup {req.backup_name} is a backup of ShopRelease "
                f"{observed.restore_source_release or '(none)'}, not of {plan.owner.name}; "
                "restoring it would put another shop's data in this database"
            )
        elif source.phase != BackupPhase.COMPLETED or not source.path:
            refusal = f"ShopBackup {req.backup_name} is {source.phase}, not Completed"
        elif (
            source.schema_revision
            and status.schema_revision
            and source.schema_revision != status.schema_revision
        ):
            refusal = (
                f"ShopBackup {req.backup_name} is at schema revision {source.schema_revision} but the "
                f"database of {status.current_version} is at {status.schema_revision}; restoring it would "
                "run code against a schema it does not expect (release the matching version first)"
            )
        if refusal:
            plan.event("RestoreFailed", f"restore {req.request_id} refused: {refusal}", warning=True)
            return rec.model_copy(
                update={
                    "outcome": Outcome.FAILED,
                    "finished_at": iso(plan.now),
                    "message": f"refused: {refusal}",
                }
            )
        assert source is not None
        rec = rec.model_copy(update={"path": source.path, "message": "scaling the app down"})
        plan.event(
            "RestoreStarted", f"restoring {source.path} (request {req.request_id}): scaling the app down"
        )
    if rec.step == RestoreStep.SCALE_DOWN:
        scaled = all(
            d is not None and d.replicas == 0 and d.total == 0 for d in (observed.api, observed.workers)
        )
        if not scaled or observed.app_pods != 0:  # terminating pods may still write: wait them out
            left = observed.app_pods
            waiting = f"waiting for {left} pod(s) of the app to terminate" if left else "scaling the app down"
            return rec if rec.message == waiting else rec.model_copy(update={"message": waiting})
        rec = rec.model_copy(update={"step": RestoreStep.RESTORE, "message": "restoring the database"})
    if rec.step == RestoreStep.RESTORE:
        name = restore_job_name(plan.owner, rec.request_id)
        job = observed.jobs.get(name)
        if job is None or job.phase == JobPhase.RUNNING:
            assert status.current_image and rec.path
            plan.create_jobs.append(
                res.db_job(
                    plan.owner,
                    spec,
                    step="restore",
                    key=name.rsplit("-", 1)[1],
                    image=status.current_image,
                    version=status.current_version or spec.version,
                    args=["db", "restore", rec.path, "--json"],
                    timeout_seconds=spec.backup.timeout_seconds,
                )
            )
            return rec
        if job.phase == JobPhase.FAILED:
            message = f"restore Job {name} failed: {job.message}; the database was left as it was"
            rec = rec.model_copy(update={"step": RestoreStep.SCALE_UP, "outcome": None, "message": message})
            plan.event("RestoreFailed", message, warning=True)
        else:
            r = job.result or {}
            revision = r.get("schema_revision") or status.schema_revision
            previous = r.get("previous_database")
            message = f"database restored from {rec.path} (revision {revision})"
            if previous:
                message += f"; the replaced database is kept as {previous}"
            rec = rec.model_copy(
                update={
                    "step": RestoreStep.SCALE_UP,
                    "schema_revision": revision,
                    "previous_database": previous,
                    "message": message,
                }
            )
            plan.schema_revision = revision
            plan.event("DatabaseRestored", message)
    if rec.step == RestoreStep.SCALE_UP:
        image = status.current_image or ""
        up = ready(observed.api, image, spec.api.replicas) and ready(
            observed.workers, image, spec.workers.replicas
        )
        if not up:
            return rec
        failed = rec.message.startswith("restore Job")
        outcome = Outcome.FAILED if failed else Outcome.SUCCEEDED
        rec = rec.model_copy(update={"outcome": outcome, "finished_at": iso(plan.now)})
        if not failed:
            plan.event("RestoreCompleted", f"{rec.message}; the app is back at full strength")
    return rec
