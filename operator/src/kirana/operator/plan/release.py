"""The release state machine: given what the SRE asked for, what the operator recorded last time and
what the cluster shows now, decide the next actions and the new status.

    Backup -> Migrate -> Rollout -> Bake -> (success: current version = target)
       any failure -> RollbackApp (Deployments back to the last good image)
                   -> RepairDatabase (failurePolicy.database: Restore | Downgrade | Freeze)
                   -> Degraded

Called by `kirana.operator.apply.reconcile` on every wake-up. It is level-triggered and idempotent:
the state lives in `status.release`, every Job has a deterministic name, and Deployments are
declared rather than patched, so calling it again after a crash continues where it stopped. A step
that is chosen but not begun (`stepStartedAt` unset) is a step boundary: `spec.paused` holds there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kirana.operator.plan import resources as res
from kirana.operator.plan.model import (
    Decision,
    DeploymentState,
    Event,
    HealthSample,
    JobPhase,
    Observed,
    Owner,
)
from kirana.operator.spec import (
    BackupPhase,
    BackupRecord,
    Comparison,
    Condition,
    DatabasePolicy,
    Failure,
    HistoryEntry,
    Outcome,
    Phase,
    PodTemplate,
    PrometheusGate,
    Release,
    RestoreRecord,
    RestoreStep,
    ShopReleaseSpec,
    ShopReleaseStatus,
    Step,
    release_key,
)

STEP_PHASE = {
    Step.BACKUP: Phase.BACKING_UP,
    Step.MIGRATE: Phase.MIGRATING,
    Step.ROLLOUT: Phase.ROLLING_OUT,
    Step.BAKE: Phase.BAKING,
    Step.ROLLBACK_APP: Phase.ROLLING_BACK,
    Step.REPAIR_DATABASE: Phase.REPAIRING_DATABASE,
}
# Slack on top of the Deployment's own progressDeadlineSeconds before the operator gives up itself.
DEADLINE_SLACK_S = 30
IN_FLIGHT_REQUEUE_S = 10.0
STEADY_REQUEUE_S = 60.0
BAKE_POLL_S = 5.0


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def parse_time(s: str) -> datetime:
    return datetime.fromisoformat(s)


def wants_health_sample(spec: ShopReleaseSpec, status: ShopReleaseStatus) -> bool:
    """Whether `apply` should evaluate the Prometheus gate before calling `decide`."""
    rel = status.release
    return bool(
        rel
        and rel.outcome is None
        and rel.step == Step.BAKE
        and rel.step_started_at
        and spec.rollout.health_gate.prometheus
    )


def gate_passes(gate: PrometheusGate, sample: HealthSample) -> tuple[bool, str]:
    """Whether one sample of the gate's query is healthy, and a sentence saying why."""
    if sample.error:
        return False, f"health query could not be evaluated: {sample.error}"
    if sample.value is None:
        return gate.pass_on_no_data, "health query returned no data"
    v, t = sample.value, gate.threshold
    ok = {
        Comparison.LESS_THAN: v < t,
        Comparison.LESS_THAN_OR_EQUAL: v <= t,
        Comparison.GREATER_THAN: v > t,
        Comparison.GREATER_THAN_OR_EQUAL: v >= t,
    }[gate.comparison]
    return ok, f"health query value {v:g} (must be {gate.comparison} {t:g})"


@dataclass
class _Run:
    owner: Owner
    spec: ShopReleaseSpec
    status: ShopReleaseStatus
    observed: Observed
    now: datetime
    rel: Release | None = None
    create_jobs: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    paused_at_boundary: bool = False
    requeue: float = IN_FLIGHT_REQUEUE_S
    note: str = ""

    # -- helpers --------------------------------------------------------------------------------

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Event("Warning" if warning else "Normal", reason, message))

    def set(self, **update: Any) -> None:
        assert self.rel is not None
        self.rel = self.rel.model_copy(update=update)

    def update_status(self, **update: Any) -> None:
        self.status = self.status.model_copy(update=update)

    def goto(self, step: Step) -> None:
        self.set(step=step, step_started_at=None)

    def elapsed(self) -> float:
        assert self.rel is not None and self.rel.step_started_at is not None
        return (self.now - parse_time(self.rel.step_started_at)).total_seconds()

    def job_name(self, step: str) -> str:
        assert self.rel is not None
        return res.job_name(self.owner, step, self.rel.key)

    def fail(self, step: Step, reason: str, message: str) -> None:
        """Stop the release: roll the app back if it changed, then repair the database."""
        assert self.rel is not None
        self.set(failure=Failure(step=step, reason=reason, message=message))
        self.event(reason, message, warning=True)
        if step in (Step.ROLLOUT, Step.BAKE) and self.rel.previous_image:
            self.goto(Step.ROLLBACK_APP)
        elif self.rel.schema_touched and self.rel.previous_version:
            self.goto(Step.REPAIR_DATABASE)
        else:
            self.finish(Outcome.FAILED)

    def finish(self, outcome: Outcome, note: str = "") -> None:
        assert self.rel is not None
        rel = self.rel
        self.set(outcome=outcome, step_started_at=None)
        reason = rel.failure.reason if rel.failure else "Released"
        entry = HistoryEntry(
            version=rel.version,
            image=rel.image,
            outcome=outcome,
            started_at=rel.started_at,
            finished_at=iso(self.now),
            reason=reason + (f": {note}" if note else ""),
        )
        history = (entry, *self.status.history)[: self.spec.history_limit]
        self.update_status(history=history)
        self.note = note
        if outcome == Outcome.SUCCEEDED:
            self.update_status(current_version=rel.version, current_image=rel.image)
            self.event("ReleaseSucceeded", f"{rel.version} is live and passed its health gate")
        else:
            tail = f" ({note})" if note else ""
            self.event("ReleaseFailed", f"release of {rel.version} failed{tail}", warning=True)

    # -- the steps --------------------------------------------------------------------------------

    def begin(self) -> bool:
        """Start the chosen step unless paused at this boundary; True when the step may proceed."""
        assert self.rel is not None
        if self.rel.step_started_at is not None:
            return True
        if self.spec.paused:
            self.paused_at_boundary = True
            return False
        self.set(step_started_at=iso(self.now))
        rel = self.rel
        starts = {
            Step.BACKUP: ("BackupStarted", f"backing up the database before upgrading to {rel.version}"),
            Step.MIGRATE: ("MigrationStarted", f"migrating the schema for {rel.version}"),
            Step.ROLLOUT: ("RolloutStarted", f"rolling out {rel.image}"),
            Step.BAKE: ("BakeStarted", f"health gate for {self.spec.rollout.bake_seconds}s"),
            Step.ROLLBACK_APP: ("RollbackStarted", f"rolling the app back to {rel.previous_image}"),
            Step.REPAIR_DATABASE: (
                "DatabaseRepairStarted",
                f"failure policy {self.spec.failure_policy.database}: repairing the database",
            ),
        }
        reason, message = starts[rel.step]
        self.event(reason, message)
        return True

    def step_backup(self) -> bool:
        assert self.rel is not None
        rel = self.rel
        name = self.job_name("backup")
        path = rel.backup_path or res.pre_upgrade_backup_path(self.owner, rel.version, rel.key)
        self.set(backup_path=path)
        job = self.observed.jobs.get(name)
        if job is None or job.phase == JobPhase.RUNNING:
            self.create_jobs.append(
                res.db_job(
                    self.owner,
                    self.spec,
                    step="backup",
                    key=rel.key,
                    image=rel.previous_image or rel.image,
                    version=rel.previous_version or rel.version,
                    args=["db", "backup", "--out", path, "--json"],
                    timeout_seconds=self.spec.backup.timeout_seconds,
                    annotations={res.BACKUP_PATH_ANNOTATION: path},
                )
            )
            return False
        if job.phase == JobPhase.FAILED:
            self.fail(Step.BACKUP, "BackupFailed", f"backup Job {name} failed: {job.message}")
            return True
        r = job.result or {}
        record = BackupRecord(
            name=name,
            path=path,
            time=str(r.get("created_at") or iso(self.now)),
            size=r.get("size"),
            sha256=r.get("sha256"),
            schema_revision=r.get("schema_revision"),
        )
        self.update_status(last_backup=record)
        self.set(from_revision=record.schema_revision or rel.from_revision)
        size = f"{record.size} bytes" if record.size is not None else "size unknown"
        self.event("BackupCompleted", f"backup {path} ({size})")
        self.goto(Step.MIGRATE)
        return True

    def step_migrate(self) -> bool:
        assert self.rel is not None
        rel = self.rel
        name = self.job_name("migrate")
        job = self.observed.jobs.get(name)
        if job is None or job.phase == JobPhase.RUNNING:
            self.create_jobs.append(
                res.db_job(
                    self.owner,
                    self.spec,
                    step="migrate",
                    key=rel.key,
                    image=rel.image,
                    version=rel.version,
                    args=["db", "migrate", "--json"],
                    timeout_seconds=self.spec.migration.timeout_seconds,
                    backoff_limit=self.spec.migration.backoff_limit,
                )
            )
            return False
        if job.phase == JobPhase.FAILED:
            self.set(schema_touched=True)
            self.fail(Step.MIGRATE, "MigrationFailed", f"migration Job {name} failed: {job.message}")
            return True
        r = job.result or {}
        changed = bool(r.get("changed", True))
        to = r.get("to")
        self.set(
            schema_touched=changed,
            to_revision=to,
            from_revision=(
                (rel.from_revision or r.get("from"))
                if rel.backup_path
                else (r.get("from") or rel.from_revision)
            ),
        )
        if to:
            self.update_status(schema_revision=to)
        suffix = "" if changed else " (no change)"
        self.event("MigrationCompleted", f"schema at {to or 'unknown revision'}{suffix}")
        self.goto(Step.ROLLOUT)
        return True

    def _rolled_out(self, image: str) -> tuple[bool, str]:
        spec = self.spec
        parts = []
        ok = True
        for label, dep, replicas in (
            ("api", self.observed.api, spec.api.replicas),
            ("workers", self.observed.workers, spec.workers.replicas),
        ):
            if dep is None:
                ok = False
                parts.append(f"{label}: not created yet")
            elif not dep.rolled_out(image, replicas):
                ok = False
                parts.append(f"{label}: {dep.updated}/{replicas} updated, {dep.available} available")
        return ok, "; ".join(parts)

    def _deadline_exceeded(self, image: str) -> bool:
        """The Deployments gave up on `image`, or the operator's own deadline for the step passed."""
        deps = (self.observed.api, self.observed.workers)
        stuck = any(d is not None and d.image == image and d.deadline_exceeded for d in deps)
        return stuck or self.elapsed() > self.spec.rollout.progress_deadline_seconds + DEADLINE_SLACK_S

    def step_rollout(self) -> bool:
        assert self.rel is not None
        done, detail = self._rolled_out(self.rel.image)
        if done:
            self.event("RolloutCompleted", f"every api and workers pod runs {self.rel.image}")
            self.goto(Step.BAKE)
            return True
        if self._deadline_exceeded(self.rel.image):
            msg = f"rollout of {self.rel.image} made no progress within its deadline ({detail})"
            self.fail(Step.ROLLOUT, "RolloutStuck", msg)
            return True
        return False

    def step_bake(self) -> bool:
        assert self.rel is not None
        spec = self.spec
        for label, dep, replicas in (
            ("api", self.observed.api, spec.api.replicas),
            ("workers", self.observed.workers, spec.workers.replicas),
        ):
            available = dep.available if dep else 0
            if available < replicas:
                msg = f"{label} has {available} of {replicas} pods available during the bake"
                self.fail(Step.BAKE, "HealthGateFailed", msg)
                return True
        gate = spec.rollout.health_gate.prometheus
        if gate and self.observed.health is not None:
            ok, why = gate_passes(gate, self.observed.health)
            if not ok:
                self.fail(Step.BAKE, "HealthGateFailed", why)
                return True
        remaining = spec.rollout.bake_seconds - self.elapsed()
        if remaining <= 0:
            self.finish(Outcome.SUCCEEDED)
            return False
        self.requeue = max(0.5, min(BAKE_POLL_S, remaining))
        return False

    def step_rollback_app(self) -> bool:
        assert self.rel is not None
        rel = self.rel
        previous = rel.previous_image
        assert previous is not None
        done, detail = self._rolled_out(previous)
        if not done and not self._deadline_exceeded(previous):
            return False
        if not done:
            msg = f"rolling back to {previous} did not complete: {detail}"
            self.event("RollbackStuck", msg, warning=True)
        else:
            self.event("RollbackCompleted", f"every api and workers pod runs {previous} again")
        if rel.schema_touched:
            self.goto(Step.REPAIR_DATABASE)
        else:
            self.finish(Outcome.FAILED, "app rolled back; the database was not changed")
        return True

    def step_repair_database(self) -> bool:
        assert self.rel is not None
        rel = self.rel
        policy = self.spec.failure_policy.database
        if policy == DatabasePolicy.FREEZE:
            self.finish(
                Outcome.FAILED,
                f"database frozen at revision {rel.to_revision or 'unknown'} (failurePolicy Freeze): "
                "a human must decide",
            )
            return False
        if policy == DatabasePolicy.RESTORE:
            backup = self.status.last_backup
            if not rel.backup_path or backup is None or backup.path != rel.backup_path:
                self.finish(Outcome.FAILED, "no pre-upgrade backup to restore; database left as is")
                return False
            step, image, version = "restore", rel.previous_image or rel.image, rel.previous_version
            args = ["db", "restore", rel.backup_path, "--json"]
        else:
            if rel.from_revision is None:
                # Rolling back "to base" would drop every table: never guess the target revision.
                self.finish(Outcome.FAILED, "pre-upgrade revision unknown; database left as is")
                return False
            step, image, version = "dbrollback", rel.image, rel.version
            args = ["db", "rollback", "--to", rel.from_revision, "--json"]
        name = self.job_name(step)
        job = self.observed.jobs.get(name)
        if job is None or job.phase == JobPhase.RUNNING:
            self.create_jobs.append(
                res.db_job(
                    self.owner,
                    self.spec,
                    step=step,
                    key=rel.key,
                    image=image,
                    version=version or rel.version,
                    args=args,
                    timeout_seconds=self.spec.backup.timeout_seconds,
                )
            )
            return False
        if job.phase == JobPhase.FAILED:
            self.event("DatabaseRepairFailed", f"{step} Job {name} failed: {job.message}", warning=True)
            note = f"database repair ({policy}) failed: {job.message}; manual action needed"
            self.finish(Outcome.FAILED, note)
            return False
        r = job.result or {}
        revision = r.get("schema_revision") if step == "restore" else r.get("to", rel.from_revision)
        self.update_status(schema_revision=revision)
        if step == "restore":
            note = f"database restored from {rel.backup_path} (revision {revision})"
            if r.get("previous_database"):
                note += f"; the replaced database is kept as {r['previous_database']}"
        else:
            note = f"schema rolled back to {revision or 'base'}"
        self.event("DatabaseRepaired", note)
        self.finish(Outcome.FAILED, note)
        return False

    def advance(self) -> None:
        steps = {
            Step.BACKUP: self.step_backup,
            Step.MIGRATE: self.step_migrate,
            Step.ROLLOUT: self.step_rollout,
            Step.BAKE: self.step_bake,
            Step.ROLLBACK_APP: self.step_rollback_app,
            Step.REPAIR_DATABASE: self.step_repair_database,
        }
        for _ in range(len(steps) + 2):  # each pass either waits or moves strictly forward
            assert self.rel is not None
            if self.rel.outcome is not None or not self.begin():
                return
            if not steps[self.rel.step]():
                return


def restore_job_name(owner: Owner, request_id: str) -> str:
    return res.job_name(owner, "restore", "r" + release_key("restore", request_id)[:7])


def _plan_restore(run: _Run, release_in_flight: bool) -> RestoreRecord | None:
    """spec.restore: scale the app to 0, `kirana db restore <backup>`, scale back; one per requestId.

    Starts only between releases (never races one) and not while paused; once started it runs to
    the end. Refuses, before touching anything, a backup of another ShopRelease, one that is not
    Completed, or one whose schema revision differs from the database's (the running code expects
    the current revision).
    """
    spec, status, observed = run.spec, run.status, run.observed
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
            started_at=iso(run.now),
        )
        source = observed.restore_source
        refusal = ""
        if not status.current_image:
            refusal = "nothing is installed yet"
        elif source is None:
            refusal = f"ShopBackup {req.backup_name} does not exist"
        elif observed.restore_source_release != run.owner.name:
            refusal = (
                f"ShopBackup {req.backup_name} is a backup of ShopRelease "
                f"{observed.restore_source_release or '(none)'}, not of {run.owner.name}; "
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
            run.event("RestoreFailed", f"restore {req.request_id} refused: {refusal}", warning=True)
            return rec.model_copy(
                update={
                    "outcome": Outcome.FAILED,
                    "finished_at": iso(run.now),
                    "message": f"refused: {refusal}",
                }
            )
        assert source is not None
        rec = rec.model_copy(update={"path": source.path, "message": "scaling the app down"})
        run.event(
            "RestoreStarted", f"restoring {source.path} (request {req.request_id}): scaling the app down"
        )
    run.requeue = IN_FLIGHT_REQUEUE_S
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
        name = restore_job_name(run.owner, rec.request_id)
        job = observed.jobs.get(name)
        if job is None or job.phase == JobPhase.RUNNING:
            assert status.current_image and rec.path
            run.create_jobs.append(
                res.db_job(
                    run.owner,
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
            run.event("RestoreFailed", message, warning=True)
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
            run.update_status(schema_revision=revision)
            run.event("DatabaseRestored", message)
    if rec.step == RestoreStep.SCALE_UP:
        image = status.current_image or ""
        up = _ready(observed.api, image, spec.api.replicas) and _ready(
            observed.workers, image, spec.workers.replicas
        )
        if not up:
            return rec
        failed = rec.message.startswith("restore Job")
        outcome = Outcome.FAILED if failed else Outcome.SUCCEEDED
        rec = rec.model_copy(update={"outcome": outcome, "finished_at": iso(run.now)})
        if not failed:
            run.event("RestoreCompleted", f"{rec.message}; the app is back at full strength")
    return rec


def _app_target(status: ShopReleaseStatus, rel: Release | None) -> tuple[str, str] | None:
    """The (image, version) the api and workers Deployments should run right now."""
    current = (status.current_image, status.current_version)
    if rel is not None and rel.outcome is None:
        started = rel.step_started_at is not None
        # Until a step begins (a pause boundary) the app stays on what the previous step left.
        new_running = rel.step == Step.BAKE or (started and rel.step == Step.ROLLOUT)
        if new_running or (not started and rel.step == Step.ROLLBACK_APP):
            return (rel.image, rel.version)
        if rel.previous_image:
            return (rel.previous_image, rel.previous_version or rel.version)
        return None
    if current[0] and current[1]:
        return (current[0], current[1])
    return None


def _pods_spec(
    spec: ShopReleaseSpec, status: ShopReleaseStatus, rel: Release | None, target: tuple[str, str]
) -> ShopReleaseSpec:
    """The spec the app's Deployments are rendered from. While the running version stays on
    (a release before its rollout, a rollback, a failed release) while the spec asks for
    another, its pods keep the shape they had when last live: what the release changed
    (resources, labels, config) belongs to the new version and leaves with it. A field edited
    again after the release started applies at once (a fix, a rotated secret)."""
    running = (status.current_image, status.current_version)
    wanted = (spec.image_ref, spec.version)
    if status.current_template is None or target != running or wanted == running:
        return spec
    template = status.current_template
    if rel is not None and rel.template is not None and (rel.image, rel.version) == wanted:
        template = template.keeping(rel.template, PodTemplate.of(spec))
    return template.over(spec)


def _ready(dep: DeploymentState | None, image: str, replicas: int) -> bool:
    return dep is not None and dep.rolled_out(image, replicas)


def _condition(
    old: tuple[Condition, ...], ctype: str, ok: bool, reason: str, message: str, generation: int, now: str
) -> Condition:
    status = "True" if ok else "False"
    prev = next((c for c in old if c.type == ctype), None)
    since = prev.last_transition_time if prev is not None and prev.status == status else now
    return Condition(
        type=ctype,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=since,
    )


def decide(
    owner: Owner, spec: ShopReleaseSpec, status: ShopReleaseStatus, observed: Observed, now: datetime
) -> Decision:
    run = _Run(owner=owner, spec=spec, status=status, observed=observed, now=now, rel=status.release)
    wanted = (spec.version, spec.image_ref)
    current = (status.current_version, status.current_image)
    rel = status.release
    failed_same = rel is not None and rel.outcome == Outcome.FAILED and (rel.version, rel.image) == wanted

    release_in_flight = rel is not None and rel.outcome is None
    restore = _plan_restore(run, release_in_flight)
    run.update_status(last_restore=restore)
    restoring = restore is not None and restore.outcome is None

    if (rel is None or rel.outcome is not None) and wanted != current and not failed_same and not restoring:
        if spec.paused:
            run.paused_at_boundary = True
        else:
            first = Step.BACKUP if current[0] and spec.backup.before_upgrade else Step.MIGRATE
            run.rel = Release(
                version=spec.version,
                image=spec.image_ref,
                key=release_key(*wanted),
                previous_version=current[0],
                previous_image=current[1],
                step=first,
                started_at=iso(now),
                from_revision=status.schema_revision if current[0] else None,
                template=PodTemplate.of(spec),
            )
            what = f"upgrading {current[0]} -> {spec.version}" if current[0] else f"installing {spec.version}"
            run.event("ReleaseStarted", what)
    if run.rel is not None and run.rel.outcome is None:
        run.advance()
    run.update_status(release=run.rel)

    rel = run.rel
    in_flight = rel is not None and rel.outcome is None
    target = _app_target(run.status, rel)
    applies: list[dict[str, Any]] = []
    deletes: list[tuple[str, str]] = []
    hands_off = spec.paused and not in_flight and not restoring
    if target and not hands_off:
        image, version = target
        scaled_down = restoring and restore is not None and restore.step != RestoreStep.SCALE_UP
        replicas = 0 if scaled_down else None
        shaped = _pods_spec(spec, run.status, rel, target)
        applies += [
            res.api_deployment(owner, shaped, image, version, replicas),
            res.workers_deployment(owner, shaped, image, version, replicas),
            res.api_service(owner),
            res.disruption_budget(owner, "api", res.api_name(owner)),
            res.disruption_budget(owner, "workers", res.workers_name(owner)),
        ]
    if not hands_off:
        cron_image = run.status.current_image or (target[0] if target else None)
        cron_version = run.status.current_version or (target[1] if target else None)
        if spec.backup.schedule and spec.backup.storage and cron_image and cron_version:
            applies.append(res.backup_cronjob(owner, spec, cron_image, cron_version))
        else:
            deletes.append(("CronJob", res.cronjob_name(owner)))

    # -- phase and conditions -------------------------------------------------------------------
    st = run.status
    now_s = iso(now)
    gen = owner.generation
    degraded = rel is not None and rel.outcome == Outcome.FAILED and (rel.version, rel.image) == wanted
    app_ready = bool(
        target
        and _ready(observed.api, target[0], spec.api.replicas)
        and _ready(observed.workers, target[0], spec.workers.replicas)
    )
    live = not in_flight and not degraded and current_matches(st, wanted)
    if restoring:
        phase = Phase.RESTORING
    elif run.paused_at_boundary or hands_off:
        phase = Phase.PAUSED
    elif in_flight:
        assert rel is not None
        phase = STEP_PHASE[rel.step]
    elif degraded:
        phase = Phase.DEGRADED
    elif live and app_ready:
        phase = Phase.READY
    elif live:
        phase = Phase.PROGRESSING
    else:
        phase = Phase.PENDING
    failure = rel.failure if rel is not None else None
    old = status.conditions
    if restoring:
        assert restore is not None
        ready = ("Restoring", f"restore {restore.request_id}: {restore.message}")
    elif live and app_ready:
        ready = ("ReleaseLive", f"{spec.version} is live; every pod is ready")
    elif degraded:
        running = st.current_version or "nothing"
        ready = ("ReleaseFailed", f"release of {spec.version} failed; {running} is running")
    elif run.paused_at_boundary or hands_off:
        ready = ("Paused", "the release is paused")
    elif in_flight:
        ready = ("Releasing", f"release of {spec.version} in progress")
    else:
        ready = ("PodsNotReady", "not every api and workers pod is ready")
    if restoring:
        assert restore is not None
        progressing = ("Restore", f"{restore.step.value} of restore {restore.request_id}")
    elif run.paused_at_boundary or hands_off:
        progressing = ("Paused", "spec.paused is true; nothing new starts")
    elif in_flight:
        assert rel is not None
        progressing = (rel.step.value, f"{rel.step.value} of {rel.version}")
    else:
        progressing = ("Idle", "no release in progress")
    backup_failed = failure is not None and failure.step == Step.BACKUP and (degraded or in_flight)
    if st.last_backup and not backup_failed:
        backed = (True, "BackupCompleted", f"{st.last_backup.path} at {st.last_backup.time}")
    elif backup_failed:
        assert failure is not None
        backed = (False, "BackupFailed", failure.message)
    else:
        backed = (False, "NoBackup", "no backup has been taken by this release yet")
    migration_failed = failure is not None and failure.step == Step.MIGRATE and (degraded or in_flight)
    if migration_failed:
        assert failure is not None
        migrated = (False, "MigrationFailed", failure.message)
    elif in_flight and rel is not None and rel.step in (Step.BACKUP, Step.MIGRATE):
        migrated = (False, "MigrationPending", f"schema not yet migrated for {rel.version}")
    else:
        migrated = (st.schema_revision is not None, "SchemaCurrent", f"schema at {st.schema_revision}")
    if degraded:
        assert failure is not None and rel is not None
        note = next((h.reason for h in st.history if h.version == rel.version), failure.reason)
        degraded_c = (True, failure.reason, f"{failure.message}; {note}")
    else:
        degraded_c = (False, "Healthy", "no failed release")
    conditions = (
        _condition(old, "Ready", ready[0] == "ReleaseLive", ready[0], ready[1], gen, now_s),
        _condition(
            old,
            "Progressing",
            (in_flight and not run.paused_at_boundary) or restoring,
            progressing[0],
            progressing[1],
            gen,
            now_s,
        ),
        _condition(old, "BackedUp", backed[0], backed[1], backed[2], gen, now_s),
        _condition(old, "Migrated", migrated[0], migrated[1], migrated[2], gen, now_s),
        _condition(old, "Degraded", degraded_c[0], degraded_c[1], degraded_c[2], gen, now_s),
    )
    update: dict[str, Any] = {
        "phase": phase,
        "observed_generation": gen,
        "target_version": spec.version,
        "conditions": conditions,
    }
    live_template = PodTemplate.of(spec)
    if phase == Phase.READY and all(  # pods that run this template, all ready: worth coming back to
        d is not None and d.template == live_template.digest() and d.observed_generation >= d.generation
        for d in (observed.api, observed.workers)
    ):
        update["current_template"] = live_template
    st = st.model_copy(update=update)
    requeue = run.requeue if in_flight or restoring else STEADY_REQUEUE_S
    return Decision(
        status=st,
        create_jobs=tuple(run.create_jobs),
        apply=tuple(applies),
        delete=tuple(deletes),
        events=tuple(run.events),
        requeue_after=requeue,
    )


def current_matches(status: ShopReleaseStatus, wanted: tuple[str, str]) -> bool:
    return (status.current_version, status.current_image) == wanted
