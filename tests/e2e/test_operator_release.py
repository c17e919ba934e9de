"""The ShopRelease operator end to end: the real operator process on the testbed, Job commands run
for real against PostgreSQL by tests/e2e/jobrunner.py.

Install reaches Ready; an upgrade backs up, migrates and rolls out in that order without the api
ever having fewer ready pods than asked for; a failing migration leaves v1 running, the database
at v1's revision and the release Degraded.
"""

from __future__ import annotations

from .jobrunner import DeploymentWatch, Shop, first_time, shoprelease

NAME = "shop"


def install_v1(shop: Shop, **spec: object) -> None:
    shop.apply(shoprelease(NAME, "1.0.0", **spec))
    shop.wait_phase(NAME, "Ready")


def test_install_reaches_ready(shop: Shop) -> None:
    install_v1(shop)
    obj = shop.get(NAME)
    status = obj["status"]
    assert status["currentVersion"] == "1.0.0"
    assert shop.condition(NAME, "Ready")["status"] == "True"
    assert shop.condition(NAME, "Ready")["observedGeneration"] == obj["metadata"]["generation"]
    assert shop.condition(NAME, "Degraded")["status"] == "False"
    # The migration Job really ran against the database: its schema is at v1's head.
    assert status["schemaRevision"] == shop.schema_revision() is not None
    assert shop.runner.commands() == ["db migrate"]
    assert shop.deployment_images(NAME) == {"api": "kirana-api:1.0.0", "workers": "kirana-api:1.0.0"}
    assert status["history"][0]["outcome"] == "Succeeded"


def test_upgrade_backs_up_then_migrates_then_rolls_out_without_losing_capacity(shop: Shop) -> None:
    install_v1(shop)
    v1_revision = shop.schema_revision()
    with DeploymentWatch(shop.api, shop.namespace, f"{NAME}-api") as api_watch:
        shop.apply(shoprelease(NAME, "2.0.0"))
        shop.wait_phase(NAME, "Ready", timeout=180)
    status = shop.get(NAME)["status"]
    assert status["currentVersion"] == "2.0.0"
    assert shop.runner.commands() == ["db migrate", "db backup", "db migrate"]
    # The backup was taken at v1's schema, then the v2 migration ran.
    backup_run = shop.runner.runs[1]
    assert f'"schema_revision": "{v1_revision}"' in backup_run.stdout
    assert status["lastBackup"]["schemaRevision"] == v1_revision
    assert status["lastBackup"]["sha256"] and status["lastBackup"]["size"] > 0
    assert shop.table_exists("e2e_release_marker")
    assert status["schemaRevision"] == shop.schema_revision() != v1_revision
    # Order: the api Deployment only changed image after the migration had run.
    reasons = shop.event_reasons(NAME)
    upgrade = reasons[reasons.index("BackupStarted") :]
    expected = [
        "BackupStarted",
        "BackupCompleted",
        "MigrationStarted",
        "MigrationCompleted",
        "RolloutStarted",
    ]
    assert [r for r in upgrade if r in expected] == expected
    v2_seen = first_time(api_watch.samples, lambda s: s[1] == "kirana-api:2.0.0")
    assert v2_seen is not None
    # Capacity: from the first sample on, the api never had fewer ready pods than its replicas.
    low = [s for s in api_watch.samples if s[3] < s[2]]
    assert api_watch.samples and not low, f"ready replicas dropped below spec: {low}"
    assert any(s[1] == "kirana-api:2.0.0" and s[3] == 2 for s in api_watch.samples)
    assert shop.pod_images() == {"kirana-api:2.0.0"}


def test_failing_migration_rolls_back_and_leaves_v1_running(shop: Shop) -> None:
    install_v1(shop, failurePolicy={"database": "Downgrade"})
    v1_revision = shop.schema_revision()
    shop.apply(shoprelease(NAME, "3.0.0", failurePolicy={"database": "Downgrade"}))
    obj = shop.wait_phase(NAME, "Degraded", timeout=180)
    status = obj["status"]
    degraded = shop.condition(NAME, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "MigrationFailed"
    assert "table_that_does_not_exist" in degraded["message"]
    assert shop.condition(NAME, "Ready")["status"] == "False"
    assert shop.condition(NAME, "Migrated")["reason"] == "MigrationFailed"
    assert status["currentVersion"] == "1.0.0" and status["targetVersion"] == "3.0.0"
    assert shop.runner.commands() == ["db migrate", "db backup", "db migrate", "db rollback"]
    assert shop.schema_revision() == v1_revision
    # Nothing of v3 runs: Deployments and pods are still v1.
    assert shop.deployment_images(NAME) == {"api": "kirana-api:1.0.0", "workers": "kirana-api:1.0.0"}
    assert shop.pod_images() == {"kirana-api:1.0.0"}
    assert status["history"][0]["outcome"] == "Failed"
    assert "ReleaseFailed" in shop.event_reasons(NAME)


def test_pause_stops_at_the_next_step_boundary(shop: Shop) -> None:
    install_v1(shop)
    v1_revision = shop.schema_revision()
    shop.runner.hold()  # the backup Job's pod stays Running until released
    shop.apply(shoprelease(NAME, "2.0.0"))
    shop.wait_phase(NAME, "BackingUp")
    shop.apply(shoprelease(NAME, "2.0.0", paused=True))
    shop.runner.release()

    # The running step (the backup) finishes; the next one (the migration) does not begin.
    obj = shop.wait_phase(NAME, "Paused", timeout=60)
    release = obj["status"]["release"]
    assert release["step"] == "Migrate" and "stepStartedAt" not in release
    assert obj["status"]["lastBackup"]["schemaRevision"] == v1_revision
    assert shop.runner.commands() == ["db migrate", "db backup"]
    assert shop.schema_revision() == v1_revision
    assert shop.deployment_images(NAME) == {"api": "kirana-api:1.0.0", "workers": "kirana-api:1.0.0"}
    assert shop.condition(NAME, "Ready")["reason"] == "Paused"

    shop.apply(shoprelease(NAME, "2.0.0", paused=False))
    status = shop.wait_phase(NAME, "Ready", timeout=120)["status"]
    assert status["currentVersion"] == "2.0.0"
    assert shop.runner.commands() == ["db migrate", "db backup", "db migrate"]


def test_metrics_then_deleting_the_release_removes_everything_it_owns(shop: Shop) -> None:
    from kubernetes import client

    from . import k8s

    install_v1(shop)
    op = shop.operator
    assert op.metric('kirana_operator_releases{phase="Ready"}') == 1
    assert op.metric("kirana_operator_reconcile_duration_seconds_count") > 0
    # Every operator metric a rule or dashboard names is on this running operator's /metrics.
    from tests.monitoring.test_metrics_exist import exported, named_metrics

    wanted = {name for name in named_metrics() if name.startswith("kirana_operator_")}
    assert len(wanted) >= 3
    assert wanted - exported(op.exposition()) == set(), "named by monitoring/, not exported"

    apps, batch = client.AppsV1Api(shop.api), client.BatchV1Api(shop.api)
    assert len(apps.list_namespaced_deployment(shop.namespace).items) == 2
    shop.custom.delete_namespaced_custom_object(
        "kirana.dev", "v1alpha1", shop.namespace, "shopreleases", NAME
    )

    def gone() -> bool:
        releases = shop.custom.list_namespaced_custom_object(
            "kirana.dev", "v1alpha1", shop.namespace, "shopreleases"
        )
        return (
            not releases["items"]
            and not apps.list_namespaced_deployment(shop.namespace).items
            and not [
                j
                for j in batch.list_namespaced_job(shop.namespace).items
                if not j.metadata.deletion_timestamp
            ]
        )

    # The finalizer is released and the garbage collector follows the owner references.
    k8s.wait_for("the release and what it owns to be deleted", gone, timeout=60)
    k8s.wait_for(
        "the phase gauge to forget the release",
        lambda: op.metric('kirana_operator_releases{phase="Ready"}') == 0,
        timeout=30,
    )
