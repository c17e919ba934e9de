"""The phase and five conditions of a ShopRelease (`plan.status.summarize`), as a decision table:
one row per situation an SRE can meet, with the phase and the (status, reason) of each condition
they would read in `kubectl get srel -o yaml`."""

from __future__ import annotations

from typing import Any

import pytest

from kirana.operator.plan.status import CONDITION_TYPES, summarize
from kirana.operator.spec import (
    BackupRecord,
    Condition,
    Failure,
    HistoryEntry,
    Outcome,
    Phase,
    Release,
    RestoreRecord,
    RestoreStep,
    ShopReleaseStatus,
    Step,
)

WANTED = ("2.0.0", "shop:2.0.0")
NOW = "2026-12-01T12:00:00Z"
EARLIER = "2026-12-01T11:00:00Z"


def release(step: Step = Step.MIGRATE, outcome: Outcome | None = None, **kw: Any) -> Release:
    fields: dict[str, Any] = {
        "version": WANTED[0],
        "image": WANTED[1],
        "key": "abc1234",
        "previous_version": "1.0.0",
        "previous_image": "shop:1.0.0",
        "step": step,
        "step_started_at": EARLIER,
        "started_at": EARLIER,
        "outcome": outcome,
    }
    return Release(**(fields | kw))


LIVE = {"current_version": WANTED[0], "current_image": WANTED[1], "schema_revision": "r2"}
OLD = {"current_version": "1.0.0", "current_image": "shop:1.0.0", "schema_revision": "r1"}
BACKUP = BackupRecord(name="b", path="/backups/b.dump", time=EARLIER)
MIGRATION_FAILED = Failure(step=Step.MIGRATE, reason="MigrationFailed", message="migration Job failed: boom")
BACKUP_FAILED = Failure(step=Step.BACKUP, reason="BackupFailed", message="backup Job failed: disk full")
RESTORING = RestoreRecord(
    request_id="7", backup_name="nightly", step=RestoreStep.RESTORE, started_at=EARLIER, message="restoring"
)

# (id, status fields, paused, app_ready, phase, {condition: (status, reason)})
ROWS: list[tuple[str, dict[str, Any], bool, bool, Phase, dict[str, tuple[str, str]]]] = [
    (
        "nothing installed, nothing started",
        {},
        False,
        False,
        Phase.PENDING,
        {
            "Ready": ("False", "PodsNotReady"),
            "Progressing": ("False", "Idle"),
            "BackedUp": ("False", "NoBackup"),
            "Migrated": ("False", "SchemaCurrent"),
            "Degraded": ("False", "Healthy"),
        },
    ),
    (
        "live and every pod ready",
        {**LIVE, "last_backup": BACKUP},
        False,
        True,
        Phase.READY,
        {
            "Ready": ("True", "ReleaseLive"),
            "Progressing": ("False", "Idle"),
            "BackedUp": ("True", "BackupCompleted"),
            "Migrated": ("True", "SchemaCurrent"),
            "Degraded": ("False", "Healthy"),
        },
    ),
    (
        "live but a pod not ready",
        LIVE,
        False,
        False,
        Phase.PROGRESSING,
        {"Ready": ("False", "PodsNotReady"), "Progressing": ("False", "Idle")},
    ),
    (
        "backing up before the upgrade",
        {**OLD, "release": release(Step.BACKUP)},
        False,
        True,
        Phase.BACKING_UP,
        {
            "Ready": ("False", "Releasing"),
            "Progressing": ("True", "Backup"),
            "BackedUp": ("False", "NoBackup"),
            "Migrated": ("False", "MigrationPending"),
        },
    ),
    (
        "migrating",
        {**OLD, "last_backup": BACKUP, "release": release(Step.MIGRATE)},
        False,
        True,
        Phase.MIGRATING,
        {"Progressing": ("True", "Migrate"), "Migrated": ("False", "MigrationPending")},
    ),
    (
        "rolling out",
        {**OLD, "release": release(Step.ROLLOUT)},
        False,
        False,
        Phase.ROLLING_OUT,
        {"Progressing": ("True", "Rollout"), "Migrated": ("True", "SchemaCurrent")},
    ),
    (
        "rolling back after a failed migration",
        {**OLD, "release": release(Step.REPAIR_DATABASE, failure=MIGRATION_FAILED)},
        False,
        True,
        Phase.REPAIRING_DATABASE,
        {"Migrated": ("False", "MigrationFailed"), "Degraded": ("False", "Healthy")},
    ),
    (
        "paused at a step boundary",
        {**OLD, "release": release(Step.ROLLOUT, step_started_at=None)},
        True,
        True,
        Phase.PAUSED,
        {"Ready": ("False", "Paused"), "Progressing": ("False", "Paused")},
    ),
    (
        "failed migration, old version running",
        {
            **OLD,
            "release": release(Step.REPAIR_DATABASE, Outcome.FAILED, failure=MIGRATION_FAILED),
            "history": (
                HistoryEntry(
                    version=WANTED[0],
                    image=WANTED[1],
                    outcome=Outcome.FAILED,
                    started_at=EARLIER,
                    finished_at=NOW,
                    reason="MigrationFailed: database restored",
                ),
            ),
        },
        False,
        True,
        Phase.DEGRADED,
        {
            "Ready": ("False", "ReleaseFailed"),
            "Progressing": ("False", "Idle"),
            "Migrated": ("False", "MigrationFailed"),
            "Degraded": ("True", "MigrationFailed"),
        },
    ),
    (
        "failed backup blocks the release",
        {
            **OLD,
            "last_backup": BACKUP,
            "release": release(Step.BACKUP, Outcome.FAILED, failure=BACKUP_FAILED),
        },
        False,
        True,
        Phase.DEGRADED,
        {"BackedUp": ("False", "BackupFailed"), "Degraded": ("True", "BackupFailed")},
    ),
    (
        "a failed release of another version is not Degraded",
        {
            **LIVE,
            "release": release(Step.MIGRATE, Outcome.FAILED, failure=MIGRATION_FAILED).model_copy(
                update={"version": "1.9.0", "image": "shop:1.9.0"}
            ),
        },
        False,
        True,
        Phase.READY,
        {
            "Ready": ("True", "ReleaseLive"),
            "Degraded": ("False", "Healthy"),
            "Migrated": ("True", "SchemaCurrent"),
        },
    ),
    (
        "restoring wins over everything",
        {**LIVE, "last_restore": RESTORING},
        True,
        False,
        Phase.RESTORING,
        {"Ready": ("False", "Restoring"), "Progressing": ("True", "Restore")},
    ),
    (
        "paused with nothing in flight",
        LIVE,
        True,
        True,
        Phase.PAUSED,
        {"Ready": ("True", "ReleaseLive"), "Progressing": ("False", "Paused")},
    ),
]


@pytest.mark.parametrize(
    ("fields", "paused", "app_ready", "phase", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_phase_and_conditions(
    fields: dict[str, Any], paused: bool, app_ready: bool, phase: Phase, expected: dict[str, tuple[str, str]]
) -> None:
    summary = summarize(
        ShopReleaseStatus(**fields), wanted=WANTED, paused=paused, app_ready=app_ready, generation=3, now=NOW
    )
    assert summary.phase == phase
    assert tuple(c.type for c in summary.conditions) == CONDITION_TYPES
    got = {c.type: (c.status, c.reason) for c in summary.conditions}
    assert {k: got[k] for k in expected} == expected
    assert all(c.observed_generation == 3 for c in summary.conditions)


def test_a_condition_keeps_its_transition_time_until_its_status_flips() -> None:
    old = (
        Condition(type="Ready", status="True", reason="ReleaseLive", last_transition_time=EARLIER),
        Condition(type="Degraded", status="True", reason="MigrationFailed", last_transition_time=EARLIER),
    )
    summary = summarize(
        ShopReleaseStatus(**LIVE, conditions=old),
        wanted=WANTED,
        paused=False,
        app_ready=True,
        generation=1,
        now=NOW,
    )
    since = {c.type: c.last_transition_time for c in summary.conditions}
    assert since["Ready"] == EARLIER  # still True
    assert since["Degraded"] == NOW  # True -> False
    assert since["Progressing"] == NOW  # new


def test_degraded_message_carries_the_history_note() -> None:
    fields = ROWS[8][1]
    summary = summarize(
        ShopReleaseStatus(**fields), wanted=WANTED, paused=False, app_ready=True, generation=1, now=NOW
    )
    degraded = next(c for c in summary.conditions if c.type == "Degraded")
    assert degraded.message == "migration Job failed: boom; MigrationFailed: database restored"
    ready = next(c for c in summary.conditions if c.type == "Ready")
    assert ready.message == "release of 2.0.0 failed; 1.0.0 is running"
