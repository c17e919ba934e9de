"""The release planner, table-driven: (spec, status, observed cluster, now) -> actions and status.

No cluster: every case writes out what the operator recorded and what it sees, and checks what it
decides. The e2e tests (tests/e2e/test_operator_*) prove the same paths against a real API server.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kirana.operator.plan.model import DeploymentState, HealthSample, JobPhase, JobState, Observed, Owner, iso
from kirana.operator.plan.release import decide, gate_passes
from kirana.operator.spec import (
    BackupRecord,
    Comparison,
    Failure,
    PodTemplate,
    PrometheusGate,
    Release,
    ShopReleaseStatus,
    Step,
    parse_spec,
    release_key,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
OWNER = Owner(name="shop", namespace="prod", uid="u-1", generation=3)
V1, V2 = "kirana-api:1.0.0", "kirana-api:2.0.0"
K2 = release_key("2.0.0", V2)


def spec(version: str = "2.0.0", **over: Any) -> Any:
    raw: dict[str, Any] = {
        "version": version,
        "config": {"secretName": "env"},
        "backup": {"storage": {"pvc": {"claimName": "backups"}}},
        "api": {"replicas": 2},
        "workers": {"replicas": 1},
    }
    raw.update(over)
    return parse_spec(raw)


def live(image: str, replicas: int) -> DeploymentState:
    return DeploymentState(
        image=image, replicas=replicas, total=replicas, updated=replicas, ready=replicas, available=replicas
    )


def ready_v1() -> ShopReleaseStatus:
    return ShopReleaseStatus(current_version="1.0.0", current_image=V1, schema_revision="r1")


BACKUP_PATH = f"/backups/pre-upgrade/shop-2.0.0-{K2}.dump"


def releasing(
    step: Step,
    started: timedelta | None = timedelta(seconds=5),
    backup_path: str | None = BACKUP_PATH,
    **kw: Any,
) -> ShopReleaseStatus:
    rel = Release(
        version="2.0.0",
        image=V2,
        key=K2,
        previous_version="1.0.0",
        previous_image=V1,
        step=step,
        step_started_at=iso(NOW - started) if started is not None else None,
        started_at=iso(NOW - timedelta(minutes=1)),
        backup_path=backup_path,
        **kw,
    )
    return ready_v1().model_copy(update={"release": rel})


def job(
    step: str, phase: JobPhase, result: dict[str, Any] | None = None, message: str = ""
) -> dict[str, JobState]:
    name = f"shop-{step}-{K2}"
    return {name: JobState(name=name, phase=phase, result=result, message=message)}


V1_LIVE = Observed(api=live(V1, 2), workers=live(V1, 1))
V2_LIVE = Observed(api=live(V2, 2), workers=live(V2, 1))


@dataclass
class Case:
    id: str
    status: ShopReleaseStatus
    observed: Observed
    phase: str
    jobs: list[str] = field(default_factory=list)  # "<step>: <args>" of Jobs to create
    app_image: str | None = None  # image of the declared Deployments (None: none declared)
    events: list[str] = field(default_factory=list)  # reasons, in order (subset check)
    spec: Any = None
    note: str = ""  # in the Degraded condition's message (and the history entry)
    from_revision: str | None = None  # the release's recorded pre-upgrade revision, when checked


CASES = [
    Case(
        "fresh install migrates first, no backup, no Deployments yet",
        ShopReleaseStatus(),
        Observed(),
        "Migrating",
        jobs=["migrate: db migrate --json"],
        events=["ReleaseStarted", "MigrationStarted"],
        spec=spec("1.0.0"),
    ),
    Case(
        "steady v1 declares v1 Deployments and is Ready",
        ready_v1(),
        V1_LIVE,
        "Ready",
        app_image=V1,
        spec=spec("1.0.0"),
    ),
    Case(
        "a new version starts with a backup taken by the running image",
        ready_v1(),
        V1_LIVE,
        "BackingUp",
        jobs=[f"backup: db backup --out /backups/pre-upgrade/shop-2.0.0-{K2}.dump --json"],
        app_image=V1,
        events=["ReleaseStarted", "BackupStarted"],
    ),
    Case(
        "a running backup is waited for (and its Job re-declared, create is idempotent)",
        releasing(Step.BACKUP),
        Observed(jobs=job("backup", JobPhase.RUNNING), api=live(V1, 2), workers=live(V1, 1)),
        "BackingUp",
        jobs=[f"backup: db backup --out /backups/pre-upgrade/shop-2.0.0-{K2}.dump --json"],
        app_image=V1,
    ),
    Case(
        "a finished backup is recorded and the migration starts with the new image",
        releasing(Step.BACKUP),
        Observed(
            jobs=job("backup", JobPhase.SUCCEEDED, {"size": 10, "sha256": "ab", "schema_revision": "r1"}),
            api=live(V1, 2),
            workers=live(V1, 1),
        ),
        "Migrating",
        jobs=["migrate: db migrate --json"],
        app_image=V1,
        events=["BackupCompleted", "MigrationStarted"],
    ),
    Case(
        "a failed backup stops the release before anything changed",
        releasing(Step.BACKUP),
        Observed(
            jobs=job("backup", JobPhase.FAILED, message="disk full"), api=live(V1, 2), workers=live(V1, 1)
        ),
        "Degraded",
        app_image=V1,
        events=["BackupFailed", "ReleaseFailed"],
    ),
    Case(
        "after the migration the Deployments move to v2",
        releasing(Step.MIGRATE, from_revision="r1"),
        Observed(
            jobs=job("migrate", JobPhase.SUCCEEDED, {"from": "r1", "to": "r2", "changed": True}),
            api=live(V1, 2),
            workers=live(V1, 1),
        ),
        "RollingOut",
        app_image=V2,
        events=["MigrationCompleted", "RolloutStarted"],
    ),
    Case(
        "a failed migration with Downgrade rolls the schema back to the pre-upgrade revision",
        releasing(Step.MIGRATE, from_revision="r1"),
        Observed(jobs=job("migrate", JobPhase.FAILED, message="boom"), api=live(V1, 2), workers=live(V1, 1)),
        "RepairingDatabase",
        jobs=["dbrollback: db rollback --to r1 --json"],
        app_image=V1,
        events=["MigrationFailed", "DatabaseRepairStarted"],
        spec=spec(failurePolicy={"database": "Downgrade"}),
    ),
    Case(
        "Downgrade with no backup and an unknown pre-upgrade revision does not roll back to base",
        releasing(Step.MIGRATE, backup_path=None),
        Observed(jobs=job("migrate", JobPhase.FAILED, message="boom"), api=live(V1, 2), workers=live(V1, 1)),
        "Degraded",
        app_image=V1,
        events=["MigrationFailed", "ReleaseFailed"],
        spec=spec(failurePolicy={"database": "Downgrade"}, backup={"beforeUpgrade": False}),
        note="pre-upgrade revision unknown; database left as is",
    ),
    Case(
        "Downgrade after a backup that did not report its revision does not roll back to base",
        releasing(
            Step.ROLLBACK_APP,
            schema_touched=True,
            failure=Failure(step=Step.BAKE, reason="HealthGateFailed", message="api has 1 of 2 pods"),
        ),
        V1_LIVE,
        "Degraded",
        app_image=V1,
        events=["RollbackCompleted", "ReleaseFailed"],
        spec=spec(failurePolicy={"database": "Downgrade"}),
        note="pre-upgrade revision unknown; database left as is",
    ),
    Case(
        "a release without a backup remembers the revision it started from",
        ready_v1(),
        V1_LIVE,
        "Migrating",
        jobs=["migrate: db migrate --json"],
        app_image=V1,
        spec=spec(backup={"beforeUpgrade": False}),
        from_revision="r1",
    ),
    Case(
        "a backup that did not report its revision keeps the revision recorded at the start",
        releasing(Step.BACKUP, from_revision="r1"),
        Observed(jobs=job("backup", JobPhase.SUCCEEDED, {"size": 10}), api=live(V1, 2), workers=live(V1, 1)),
        "Migrating",
        jobs=["migrate: db migrate --json"],
        app_image=V1,
        from_revision="r1",
    ),
    Case(
        "a failed migration with Restore restores the pre-upgrade backup with the old image",
        releasing(Step.MIGRATE, from_revision="r1").model_copy(
            update={
                "last_backup": BackupRecord(
                    name="b", path=f"/backups/pre-upgrade/shop-2.0.0-{K2}.dump", time="t"
                )
            }
        ),
        Observed(jobs=job("migrate", JobPhase.FAILED, message="boom"), api=live(V1, 2), workers=live(V1, 1)),
        "RepairingDatabase",
        jobs=[f"restore: db restore /backups/pre-upgrade/shop-2.0.0-{K2}.dump --json"],
        app_image=V1,
    ),
    Case(
        "a failed migration with Freeze goes straight to Degraded",
        releasing(Step.MIGRATE, from_revision="r1"),
        Observed(jobs=job("migrate", JobPhase.FAILED, message="boom"), api=live(V1, 2), workers=live(V1, 1)),
        "Degraded",
        app_image=V1,
        events=["MigrationFailed", "ReleaseFailed"],
        spec=spec(failurePolicy={"database": "Freeze"}),
    ),
    Case(
        "a rollout still in progress is waited for",
        releasing(Step.ROLLOUT, schema_touched=True),
        Observed(
            api=DeploymentState(image=V2, replicas=2, total=3, updated=1, ready=2, available=2),
            workers=live(V2, 1),
        ),
        "RollingOut",
        app_image=V2,
    ),
    Case(
        "a rollout past its deadline rolls the app back to v1",
        releasing(Step.ROLLOUT, schema_touched=True),
        Observed(
            api=DeploymentState(
                image=V2, replicas=2, total=3, updated=1, ready=2, available=2, deadline_exceeded=True
            ),
            workers=live(V2, 1),
        ),
        "RollingBack",
        app_image=V1,
        events=["RolloutStuck", "RollbackStarted"],
    ),
    Case(
        "a finished rollout starts the bake",
        releasing(Step.ROLLOUT, schema_touched=True),
        V2_LIVE,
        "Baking",
        app_image=V2,
        events=["RolloutCompleted", "BakeStarted"],
    ),
    Case(
        "a pod lost during the bake fails the health gate",
        releasing(Step.BAKE, schema_touched=True),
        Observed(
            api=DeploymentState(image=V2, replicas=2, total=2, updated=2, ready=1, available=1),
            workers=live(V2, 1),
        ),
        "RollingBack",
        app_image=V1,
        events=["HealthGateFailed", "RollbackStarted"],
    ),
    Case(
        "a bake past bakeSeconds makes v2 current",
        releasing(Step.BAKE, started=timedelta(seconds=61), schema_touched=True),
        V2_LIVE,
        "Ready",
        app_image=V2,
        events=["ReleaseSucceeded"],
    ),
    Case(
        "a finished app rollback repairs the database when the schema changed",
        releasing(Step.ROLLBACK_APP, schema_touched=True, from_revision="r1"),
        V1_LIVE,
        "RepairingDatabase",
        jobs=["dbrollback: db rollback --to r1 --json"],
        app_image=V1,
        spec=spec(failurePolicy={"database": "Downgrade"}),
    ),
    Case(
        "pause holds at the step boundary: the chosen migration does not start",
        releasing(Step.MIGRATE, started=None),
        V1_LIVE,
        "Paused",
        app_image=V1,
        spec=spec(paused=True),
    ),
    Case(
        "pause before a rollout keeps the app on v1",
        releasing(Step.ROLLOUT, started=None, schema_touched=True),
        V1_LIVE,
        "Paused",
        app_image=V1,
        spec=spec(paused=True),
    ),
    Case(
        "a paused shop with a new version starts nothing and touches nothing",
        ready_v1(),
        V1_LIVE,
        "Paused",
        spec=spec(paused=True),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decide(case: Case) -> None:
    d = decide(OWNER, case.spec or spec(), case.status, case.observed, NOW)
    assert d.status.phase == case.phase
    created = []
    for j in d.create_jobs:
        args = " ".join(j["spec"]["template"]["spec"]["containers"][0]["args"])
        created.append(f"{j['metadata']['labels']['kirana.dev/step']}: {args}")
    assert created == case.jobs
    deployments = [a for a in d.apply if a["kind"] == "Deployment"]
    images = {a["spec"]["template"]["spec"]["containers"][0]["image"] for a in deployments}
    assert images == ({case.app_image} if case.app_image else set())
    reasons = [e.reason for e in d.events]
    assert [r for r in reasons if r in case.events] == case.events
    assert all(c.observed_generation == OWNER.generation for c in d.status.conditions)
    if case.note:
        degraded = next(c for c in d.status.conditions if c.type == "Degraded")
        assert degraded.status == "True" and case.note in degraded.message
        assert case.note in d.status.history[0].reason
    if case.from_revision:
        assert d.status.release is not None and d.status.release.from_revision == case.from_revision


def test_a_failed_release_is_not_retried_until_the_spec_changes() -> None:
    failed = decide(
        OWNER,
        spec(failurePolicy={"database": "Freeze"}),
        releasing(Step.MIGRATE, from_revision="r1"),
        Observed(jobs=job("migrate", JobPhase.FAILED, message="boom"), api=live(V1, 2), workers=live(V1, 1)),
        NOW,
    )
    again = decide(OWNER, spec(), failed.status, V1_LIVE, NOW + timedelta(minutes=5))
    assert again.status.phase == "Degraded" and not again.create_jobs
    cond = {c.type: c for c in again.status.conditions}
    assert cond["Degraded"].status == "True" and cond["Degraded"].reason == "MigrationFailed"
    assert cond["Ready"].status == "False"
    # Asking for 2.0.1 starts a new release, backed up first.
    fixed = decide(OWNER, spec("2.0.1"), again.status, V1_LIVE, NOW + timedelta(minutes=6))
    assert fixed.status.phase == "BackingUp"


def test_success_records_history_bounded_by_history_limit() -> None:
    status = releasing(Step.BAKE, started=timedelta(seconds=61), schema_touched=True)
    old = [
        {"version": f"0.{i}.0", "image": "x", "outcome": "Succeeded", "startedAt": "t", "finishedAt": "t"}
        for i in range(3)
    ]
    status = status.model_copy(
        update={"history": tuple(ShopReleaseStatus.model_validate({"history": old}).history)}
    )
    d = decide(OWNER, spec(historyLimit=2), status, V2_LIVE, NOW)
    assert [h.version for h in d.status.history] == ["2.0.0", "0.0.0"]
    assert (
        d.status.current_version == "2.0.0" and d.status.release and d.status.release.outcome == "Succeeded"
    )


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    first = decide(OWNER, spec("1.0.0"), ready_v1(), V1_LIVE, NOW)
    later = decide(OWNER, spec("1.0.0"), first.status, V1_LIVE, NOW + timedelta(hours=1))
    assert first.status == later.status  # nothing to write: no status churn in steady state


def test_the_same_inputs_give_the_same_decision() -> None:
    obs = Observed(jobs=job("backup", JobPhase.RUNNING), api=live(V1, 2), workers=live(V1, 1))
    a = decide(OWNER, spec(), releasing(Step.BACKUP), obs, NOW)
    b = decide(OWNER, spec(), releasing(Step.BACKUP), obs, NOW)
    assert a == b


@pytest.mark.parametrize(
    ("comparison", "value", "no_data_passes", "ok"),
    [
        (Comparison.LESS_THAN_OR_EQUAL, 0.05, True, True),
        (Comparison.LESS_THAN_OR_EQUAL, 0.06, True, False),
        (Comparison.LESS_THAN, 0.05, True, False),
        (Comparison.GREATER_THAN_OR_EQUAL, 0.99, True, True),
        (Comparison.GREATER_THAN, 0.01, True, False),
        (Comparison.LESS_THAN_OR_EQUAL, None, True, True),
        (Comparison.LESS_THAN_OR_EQUAL, None, False, False),
    ],
)
def test_health_gate_comparisons(
    comparison: Comparison, value: float | None, no_data_passes: bool, ok: bool
) -> None:
    threshold = 0.05 if comparison in (Comparison.LESS_THAN, Comparison.LESS_THAN_OR_EQUAL) else 0.02
    gate = PrometheusGate(
        url="http://p", query="q", threshold=threshold, comparison=comparison, pass_on_no_data=no_data_passes
    )
    assert gate_passes(gate, HealthSample(value=value))[0] is ok


def test_an_unreachable_prometheus_fails_the_gate() -> None:
    gate = PrometheusGate(url="http://p", query="q", threshold=1)
    ok, why = gate_passes(gate, HealthSample(value=None, error="connection refused"))
    assert not ok and "connection refused" in why


def test_conditions_of_a_release_paused_at_a_boundary_say_paused() -> None:
    d = decide(OWNER, spec(paused=True), releasing(Step.MIGRATE, started=None), V1_LIVE, NOW)
    conditions = {c.type: c for c in d.status.conditions}
    assert (conditions["Ready"].status, conditions["Ready"].reason) == ("False", "Paused")
    assert (conditions["Progressing"].status, conditions["Progressing"].reason) == ("False", "Paused")


def _api_pods(d: Any) -> tuple[str, dict[str, Any], dict[str, str]]:
    api = next(a for a in d.apply if a["kind"] == "Deployment" and a["metadata"]["name"] == "shop-api")
    template = api["spec"]["template"]
    container = template["spec"]["containers"][0]
    return container["image"], container["resources"], template["metadata"]["labels"]


STUCK = Failure(step=Step.ROLLOUT, reason="RolloutStuck", message="made no progress")


def running(image: str, spec_: Any, api: int = 2) -> Observed:
    """Deployments fully rolled out with `spec_`'s pod template (its digest stamped on them)."""
    digest = PodTemplate.of(spec_).digest()
    return Observed(
        api=dataclasses.replace(live(image, api), template=digest),
        workers=dataclasses.replace(live(image, 1), template=digest),
    )


def test_a_rollback_puts_back_the_pods_the_running_version_had() -> None:
    """Resources and labels changed in the same edit as the version leave with the version."""
    small = {"replicas": 2, "resources": {"requests": {"cpu": "100m"}}, "podLabels": {"tier": "gold"}}
    big = {"replicas": 3, "resources": {"requests": {"cpu": "900m"}}, "podLabels": {"tier": "new"}}
    v1 = spec("1.0.0", api=small)
    # Ready, but the Deployments do not run this template yet (just edited): nothing recorded.
    assert decide(OWNER, v1, ready_v1(), V1_LIVE, NOW).status.current_template is None
    live_v1 = decide(OWNER, v1, ready_v1(), running(V1, v1), NOW)
    assert live_v1.status.phase == "Ready" and live_v1.status.current_template is not None
    assert live_v1.status.current_template.api.resources.requests == {"cpu": "100m"}

    # While v2 is backed up and migrated, v1's pods keep their shape (no restart of v1 pods
    # with v2's resources), though the new replica count applies at once.
    upgrading = decide(OWNER, spec("2.0.0", api=big), live_v1.status, running(V1, v1), NOW)
    assert upgrading.status.phase == "BackingUp"
    assert upgrading.status.release is not None and upgrading.status.release.template is not None
    image, resources, labels = _api_pods(upgrading)
    assert (image, resources["requests"], labels["tier"]) == (V1, {"cpu": "100m"}, "gold")
    api = next(a for a in upgrading.apply if a["metadata"]["name"] == "shop-api")
    assert api["spec"]["replicas"] == 3

    # The rollout runs v2 with v2's shape...
    rolling = upgrading.status.model_copy(
        update={
            "release": upgrading.status.release.model_copy(
                update={"step": Step.ROLLOUT, "step_started_at": iso(NOW)}
            )
        }
    )
    d = decide(OWNER, spec("2.0.0", api=big), rolling, V1_LIVE, NOW)
    image, resources, labels = _api_pods(d)
    assert (image, resources["requests"], labels["tier"]) == (V2, {"cpu": "900m"}, "new")

    # ...and rolling back restores v1 with v1's shape, so the old ReplicaSet is reused as it was.
    back = rolling.model_copy(
        update={"release": rolling.release.model_copy(update={"step": Step.ROLLBACK_APP, "failure": STUCK})}  # type: ignore[union-attr]
    )
    d = decide(OWNER, spec("2.0.0", api=big), back, V1_LIVE, NOW)
    image, resources, labels = _api_pods(d)
    assert (image, resources["requests"], labels["tier"]) == (V1, {"cpu": "100m"}, "gold")

    # An edit made after the release started (here the config) applies to v1's pods at once;
    # what the release itself changed (resources, labels) still stays away.
    fixed = spec("2.0.0", api=big, config={"secretName": "rotated"})
    d = decide(OWNER, fixed, back, V1_LIVE, NOW)
    image, resources, labels = _api_pods(d)
    api = next(a for a in d.apply if a["metadata"]["name"] == "shop-api")
    env_from = api["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert (image, resources["requests"]) == (V1, {"cpu": "100m"})
    assert {"secretRef": {"name": "rotated"}} in env_from

    # A release that succeeds makes its shape the one to come back to, once its pods run it.
    v2 = spec("2.0.0", api=big)
    done = decide(OWNER, v2, releasing(Step.BAKE, started=timedelta(seconds=61)), running(V2, v2, api=3), NOW)
    assert done.status.phase == "Ready" and done.status.current_template is not None
    assert done.status.current_template.api.resources.requests == {"cpu": "900m"}


def test_without_a_recorded_template_the_spec_shapes_the_pods() -> None:
    status = releasing(Step.ROLLBACK_APP, failure=STUCK)  # by an operator that kept no template
    assert status.current_template is None
    d = decide(
        OWNER,
        spec("2.0.0", api={"replicas": 2, "resources": {"requests": {"cpu": "900m"}}}),
        status,
        V1_LIVE,
        NOW,
    )
    image, resources, _ = _api_pods(d)
    assert (image, resources["requests"]) == (V1, {"cpu": "900m"})


# -- mistakes the schema cannot catch hold a release back --------------------------------------------


def test_a_missing_secret_holds_the_upgrade_back_and_names_it() -> None:
    observed = Observed(api=live(V1, 2), workers=live(V1, 1), missing=(("Secret", "env"),))
    d = decide(OWNER, spec(), ready_v1(), observed, NOW)
    assert d.status.release is None and d.create_jobs == ()
    assert d.status.phase == "InvalidSpec"
    cond = next(c for c in d.status.conditions if c.type == "InvalidSpec")
    assert (cond.status, cond.message) == ("True", "Secret env (spec.config.secretName) does not exist")
    assert [e.reason for e in d.events] == ["InvalidSpec"]
    assert d.requeue_after <= 10  # looked at again soon: the release starts once the Secret appears
    # The app that runs is left as it is.
    assert {a["kind"] for a in d.apply} >= {"Deployment"}
    again = decide(OWNER, spec(), d.status, observed, NOW + timedelta(seconds=10))
    assert again.events == ()  # the same problem is announced once

    found = decide(OWNER, spec(), again.status, Observed(api=live(V1, 2), workers=live(V1, 1)), NOW)
    assert found.status.release is not None and found.status.release.step == Step.BACKUP
    assert next(c for c in found.status.conditions if c.type == "InvalidSpec").status == "False"


def test_a_bad_schedule_is_refused_and_its_cronjob_left_alone() -> None:
    s = spec(
        version="1.0.0", backup={"schedule": "61 25 * * *", "storage": {"pvc": {"claimName": "backups"}}}
    )
    d = decide(OWNER, s, ready_v1(), Observed(api=live(V1, 2), workers=live(V1, 1)), NOW)
    assert d.status.phase == "InvalidSpec"
    assert not [a for a in d.apply if a["kind"] == "CronJob"]
    assert ("CronJob", "shop-backup") not in d.delete
    cond = next(c for c in d.status.conditions if c.type == "InvalidSpec")
    assert "spec.backup.schedule '61 25 * * *'" in cond.message
    good = spec(
        version="1.0.0", backup={"schedule": "0 3 * * *", "storage": {"pvc": {"claimName": "backups"}}}
    )
    ok = decide(OWNER, good, ready_v1(), Observed(api=live(V1, 2), workers=live(V1, 1)), NOW)
    assert ok.status.phase == "Ready"
    assert [a["spec"]["schedule"] for a in ok.apply if a["kind"] == "CronJob"] == ["0 3 * * *"]


def test_a_release_in_flight_is_not_stopped_by_a_missing_object() -> None:
    observed = Observed(api=live(V1, 2), workers=live(V1, 1), missing=(("Secret", "env"),))
    d = decide(OWNER, spec(), releasing(Step.MIGRATE), observed, NOW)
    assert d.status.phase == "Migrating"
    assert d.status.release is not None and d.status.release.outcome is None


# -- abort and retry (annotations set by `kubectl kirana abort|retry`) --------------------------------


def test_an_abort_during_the_bake_rolls_the_app_back_once() -> None:
    observed = Observed(api=live(V2, 2), workers=live(V2, 1), abort_request="t1")
    d = decide(OWNER, spec(), releasing(Step.BAKE), observed, NOW)
    rel = d.status.release
    assert rel is not None and rel.failure is not None and rel.failure.reason == "Aborted"
    assert rel.step == Step.ROLLBACK_APP and rel.abort_seen == "t1"
    assert "Aborted" in [e.reason for e in d.events]
    # The same annotation does not abort the next release.
    nxt = decide(OWNER, spec(), d.status, observed, NOW)
    assert [e.reason for e in nxt.events].count("Aborted") == 0


def test_an_abort_waits_for_a_running_migration_then_repairs_the_database() -> None:
    st = releasing(Step.MIGRATE)
    asked = Observed(api=live(V1, 2), workers=live(V1, 1), abort_request="t2")
    waiting = decide(OWNER, spec(), st, asked, NOW)
    assert waiting.status.release is not None and waiting.status.release.failure is None
    done = dataclasses.replace(asked, jobs=job("migrate", JobPhase.SUCCEEDED, {"changed": True, "to": "r2"}))
    d = decide(OWNER, spec(), waiting.status, done, NOW)
    rel = d.status.release
    assert rel is not None and rel.failure is not None and rel.failure.reason == "Aborted"
    assert rel.schema_touched and rel.step == Step.REPAIR_DATABASE  # never rolled out
    assert not [a for a in d.apply if a["kind"] == "Deployment" and V2 in str(a)]


def test_a_release_started_with_an_old_abort_annotation_is_not_aborted() -> None:
    observed = Observed(api=live(V1, 2), workers=live(V1, 1), abort_request="old")
    d = decide(OWNER, spec(), ready_v1(), observed, NOW)
    assert d.status.release is not None and d.status.release.abort_seen == "old"
    assert d.status.release.failure is None


def failed_v2(retry_seen: str | None = None) -> ShopReleaseStatus:
    st = releasing(Step.MIGRATE, failure=Failure(step=Step.MIGRATE, reason="MigrationFailed", message="x"))
    assert st.release is not None
    rel = st.release.model_copy(update={"outcome": "Failed", "retry_seen": retry_seen})
    return st.model_copy(update={"release": rel})


def test_a_retry_releases_the_failed_version_again_with_jobs_of_its_own() -> None:
    v1 = Observed(api=live(V1, 2), workers=live(V1, 1))
    assert decide(OWNER, spec(), failed_v2(), v1, NOW).status.release.outcome == "Failed"  # type: ignore[union-attr]
    d = decide(OWNER, spec(), failed_v2(), dataclasses.replace(v1, retry_request="r1"), NOW)
    rel = d.status.release
    assert rel is not None and rel.outcome is None and rel.retry_seen == "r1"
    assert rel.key == release_key("2.0.0", V2, "r1") != K2
    assert [j["metadata"]["name"] for j in d.create_jobs] == [f"shop-backup-{rel.key}"]
    # Failed again: the same annotation does not start a third attempt.
    again = failed_v2(retry_seen="r1")
    assert (
        decide(OWNER, spec(), again, dataclasses.replace(v1, retry_request="r1"), NOW).status.release.outcome
        == "Failed"
    )  # type: ignore[union-attr]
