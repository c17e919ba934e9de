"""The release state machine: given what the SRE asked for, what the operator recorded last time and
what the cluster shows now, decide the next actions and the new status.

    Backup -> Migrate -> Rollout -> Bake -> (success: current version = target)
       any failure -> RollbackApp (Deployments back to the last good image)
                   -> RepairDatabase (failurePolicy.database: Restore | Downgrade | Freeze)
                   -> Degraded

Restores (`plan.restore`) and the phase and conditions (`plan.status`) have their own modules.
Called by `kirana.operator.apply.reconcile` on every wake-up. It is level-triggered and idempotent:
the state lives in `status.release`, every Job has a deterministic name, and Deployments are
declared rather than patched, so calling it again after a crash continues where it stopped. A step
that is chosen but not begun (`stepStartedAt` unset) is a step boundary: `spec.paused` holds there.

Longer than the house's 400 lines on purpose: `_Run` is one state machine, each step a method that
names the steps it may go to; read apart, a step would hide its transitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kirana.operator.plan import resources as res
from kirana.operator.plan import restore as restore_planner
from kirana.operator.plan import status as status_planner
from kirana.operator.plan import validate
from kirana.operator.plan.model import (
    Decision,
    Event,
    HealthSample,
    JobPhase,
    Observed,
    Owner,
    iso,
    parse_time,
    ready,
)
from kirana.operator.spec import (
    BackupRecord,
    Comparison,
    DatabasePolicy,
    Failure,
    HistoryEntry,
    Outcome,
    Phase,
    PodTemplate,
    PrometheusGate,
    Release,
    RestoreStep,
    ShopReleaseSpec,
    ShopReleaseStatus,
    Step,
    release_key,
)

# Slack on top of the Deployment's own progressDeadlineSeconds before the operator gives up itself.
DEADLINE_SLACK_S = 30
IN_FLIGHT_REQUEUE_S = 10.0
STEADY_REQUEUE_S = 60.0
BAKE_POLL_S = 5.0


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


ABORT_ANNOTATION = "kirana.dev/abort"
RETRY_ANNOTATION = "kirana.dev/retry"


def _failed_same(rel: Release | None, wanted: tuple[str, str], retry_request: str | None) -> bool:
    """The release the spec asks for already failed, and no new retry asks to try it again."""
    failed = rel is not None and rel.outcome == Outcome.FAILED and (rel.version, rel.image) == wanted
    return failed and not (rel is not None and retry_request is not None and retry_request != rel.retry_seen)


def wants_reference_check(
    spec: ShopReleaseSpec, status: ShopReleaseStatus, retry_request: str | None = None
) -> bool:
    """Whether `apply` should look for the objects the spec names: a release would start now."""
    rel = status.release
    wanted = (spec.version, spec.image_ref)
    failed_same = _failed_same(rel, wanted, retry_request)
    idle = rel is None or rel.outcome is not None
    return idle and wanted != (status.current_version, status.current_image) and not failed_same


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
        path = rel.backup_path or res.pre_upgrade_backup_path(self.owner, self.spec, rel.version, rel.key)
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

    def abort_asked(self) -> str | None:
        """A new `kirana.dev/abort` value, while the release can still be aborted."""
        rel, ask = self.rel, self.observed.abort_request
        if rel is None or rel.outcome is not None or rel.failure is not None or not ask:
            return None
        return ask if ask != rel.abort_seen else None

    def abort(self, token: str) -> bool:
        """Stop the release now and roll back as a failure would; False while a migration Job runs
        (its outcome decides what the repair must undo: the abort waits for it)."""
        assert self.rel is not None
        rel = self.rel
        if rel.step == Step.MIGRATE and rel.step_started_at is not None:
            job = self.observed.jobs.get(self.job_name("migrate"))
            if job is None or job.phase == JobPhase.RUNNING:
                return False
            if job.phase == JobPhase.FAILED:
                return False  # the step fails by itself
            r = job.result or {}
            self.set(schema_touched=bool(r.get("changed", True)), to_revision=r.get("to"))
        self.set(abort_seen=token)
        self.fail(rel.step, "Aborted", f"aborted on request ({token}) during {rel.step.value}")
        return True

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
            if self.rel.outcome is not None:
                return
            token = self.abort_asked()
            if token is not None and self.abort(token):
                continue
            if not self.begin():
                return
            if not steps[self.rel.step]():
                return


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


def decide(
    owner: Owner, spec: ShopReleaseSpec, status: ShopReleaseStatus, observed: Observed, now: datetime
) -> Decision:
    """One reconcile's worth of decisions for a ShopRelease.

    In order: the restore `spec.restore` asks for moves on (`plan.restore`); a release starts when
    the spec asks for a (version, image) that is neither running nor already failed, unless a
    restore is in flight or the spec is paused; the release in flight advances through as many
    steps as it can now (`_Run.advance`); the app's Deployments, Service and PodDisruptionBudgets
    are declared for the image the app should run at this point (`_app_target`) and the backup
    CronJob for the running version; last, the phase and conditions are summed up
    (`plan.status.summarize`) and the pod template is remembered once it is live and ready.
    Nothing is applied while `spec.paused` holds and nothing is in flight.
    """
    run = _Run(owner=owner, spec=spec, status=status, observed=observed, now=now, rel=status.release)
    wanted = (spec.version, spec.image_ref)
    current = (status.current_version, status.current_image)
    rel = status.release
    failed_same = _failed_same(rel, wanted, observed.retry_request)
    retrying = rel is not None and rel.outcome == Outcome.FAILED and (rel.version, rel.image) == wanted

    release_in_flight = rel is not None and rel.outcome is None
    restoring_plan = restore_planner.plan_restore(
        owner, spec, status, observed, now, release_in_flight=release_in_flight
    )
    run.create_jobs += restoring_plan.create_jobs
    run.events += restoring_plan.events
    if restoring_plan.schema_revision is not None:
        run.update_status(schema_revision=restoring_plan.schema_revision)
    restore = restoring_plan.record
    run.update_status(last_restore=restore)
    restoring = restoring_plan.in_flight

    invalid = validate.problems(spec, observed.missing)
    if invalid:
        said = next((c for c in status.conditions if c.type == "InvalidSpec"), None)
        if said is None or said.status != "True" or said.message != "; ".join(invalid):
            run.event("InvalidSpec", "; ".join(invalid), warning=True)
    starting = (rel is None or rel.outcome is not None) and wanted != current and not failed_same
    if starting and not restoring and not invalid:
        if spec.paused:
            run.paused_at_boundary = True
        else:
            first = Step.BACKUP if current[0] and spec.backup.before_upgrade else Step.MIGRATE
            run.rel = Release(
                version=spec.version,
                image=spec.image_ref,
                key=release_key(*wanted, (observed.retry_request or "") if retrying else ""),
                abort_seen=observed.abort_request,
                retry_seen=observed.retry_request,
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
        schedule_ok = not (spec.backup.schedule and validate.cron_problem(spec.backup.schedule))
        if spec.backup.schedule and spec.backup.storage and cron_image and cron_version and schedule_ok:
            applies.append(res.backup_cronjob(owner, spec, cron_image, cron_version))
        elif schedule_ok:  # a bad schedule leaves the CronJob as it was (the API server would refuse it)
            deletes.append(("CronJob", res.cronjob_name(owner)))

    summary = status_planner.summarize(
        run.status,
        wanted=wanted,
        paused=run.paused_at_boundary or hands_off,
        app_ready=bool(
            target
            and ready(observed.api, target[0], spec.api.replicas)
            and ready(observed.workers, target[0], spec.workers.replicas)
        ),
        generation=owner.generation,
        now=iso(now),
        invalid=invalid,
    )
    update: dict[str, Any] = {
        "phase": summary.phase,
        "observed_generation": owner.generation,
        "target_version": spec.version,
        "conditions": summary.conditions,
    }
    live_template = PodTemplate.of(spec)
    if summary.phase == Phase.READY and all(  # pods that run this template, all ready: worth coming back to
        d is not None and d.template == live_template.digest() and d.observed_generation >= d.generation
        for d in (observed.api, observed.workers)
    ):
        update["current_template"] = live_template
    st = run.status.model_copy(update=update)
    # A spec held back by a missing object is looked at again soon: the release starts once it appears.
    requeue = run.requeue if in_flight or restoring or invalid else STEADY_REQUEUE_S
    return Decision(
        status=st,
        create_jobs=tuple(run.create_jobs),
        apply=tuple(applies),
        delete=tuple(deletes),
        events=tuple(run.events),
        requeue_after=requeue,
    )
