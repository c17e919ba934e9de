"""What a ShopRelease's status says about itself: its phase and its six conditions (Ready,
Progressing, BackedUp, Migrated, Degraded, InvalidSpec).

Called by `kirana.operator.plan.release.decide` once the steps have run, with the status they left.
Pure and total: every combination of inputs gets a phase and the five conditions, and a condition
keeps its `lastTransitionTime` for as long as its status does not flip
(tests/unit/operator/test_status.py is the decision table).
"""

from __future__ import annotations

from dataclasses import dataclass

from kirana.operator.spec import Condition, Outcome, Phase, ShopReleaseStatus, Step

STEP_PHASE = {
    Step.BACKUP: Phase.BACKING_UP,
    Step.MIGRATE: Phase.MIGRATING,
    Step.ROLLOUT: Phase.ROLLING_OUT,
    Step.BAKE: Phase.BAKING,
    Step.ROLLBACK_APP: Phase.ROLLING_BACK,
    Step.REPAIR_DATABASE: Phase.REPAIRING_DATABASE,
}
CONDITION_TYPES = ("Ready", "Progressing", "BackedUp", "Migrated", "Degraded", "InvalidSpec")


@dataclass(frozen=True)
class Summary:
    phase: Phase
    conditions: tuple[Condition, ...]  # in CONDITION_TYPES order


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


def summarize(
    st: ShopReleaseStatus,
    *,
    wanted: tuple[str, str],
    paused: bool,
    app_ready: bool,
    generation: int,
    now: str,
    invalid: tuple[str, ...] = (),
) -> Summary:
    """The phase and conditions of a ShopRelease.

    `st` is the status the steps left (its `release` and `lastRestore` are this pass's, its
    `conditions` the previous pass's); `wanted` is the spec's (version, image); `paused` says the
    operator holds still (at a step boundary, or `spec.paused` with nothing in flight); `app_ready`
    says both Deployments run the image they should on every replica; `invalid` lists the
    mistakes in the spec (`plan.validate`): with nothing in flight, they hold the release back.
    """
    rel, restore = st.release, st.last_restore
    version = wanted[0]
    restoring = restore is not None and restore.outcome is None
    in_flight = rel is not None and rel.outcome is None
    degraded = rel is not None and rel.outcome == Outcome.FAILED and (rel.version, rel.image) == wanted
    live = not in_flight and not degraded and (st.current_version, st.current_image) == wanted
    held = bool(invalid) and not in_flight and not restoring
    problem = "; ".join(invalid)
    if restoring:
        phase = Phase.RESTORING
    elif held:
        phase = Phase.INVALID_SPEC
    elif paused:
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
    if restoring:
        assert restore is not None
        ready = ("Restoring", f"restore {restore.request_id}: {restore.message}")
    elif live and app_ready:
        ready = ("ReleaseLive", f"{version} is live; every pod is ready")
    elif held:
        ready = ("InvalidSpec", problem)
    elif degraded:
        running = st.current_version or "nothing"
        ready = ("ReleaseFailed", f"release of {version} failed; {running} is running")
    elif paused:
        ready = ("Paused", "the release is paused")
    elif in_flight:
        ready = ("Releasing", f"release of {version} in progress")
    else:
        ready = ("PodsNotReady", "not every api and workers pod is ready")

    if restoring:
        assert restore is not None
        progressing = ("Restore", f"{restore.step.value} of restore {restore.request_id}")
    elif held:
        progressing = ("InvalidSpec", f"held back until the spec is fixed: {problem}")
    elif paused:
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

    old, gen = st.conditions, generation
    return Summary(
        phase=phase,
        conditions=(
            _condition(old, "Ready", ready[0] == "ReleaseLive", ready[0], ready[1], gen, now),
            _condition(
                old,
                "Progressing",
                (in_flight and not paused) or restoring,
                progressing[0],
                progressing[1],
                gen,
                now,
            ),
            _condition(old, "BackedUp", backed[0], backed[1], backed[2], gen, now),
            _condition(old, "Migrated", migrated[0], migrated[1], migrated[2], gen, now),
            _condition(old, "Degraded", degraded_c[0], degraded_c[1], degraded_c[2], gen, now),
            _condition(
                old,
                "InvalidSpec",
                bool(invalid),
                "InvalidSpec" if invalid else "Valid",
                problem or "the spec and the objects it names are in order",
                gen,
                now,
            ),
        ),
    )
