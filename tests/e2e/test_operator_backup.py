"""On-demand backup and restore through the API, end to end: a ShopBackup runs a real
`kirana db backup` (then retention) and records the archive; `spec.restore` on the ShopRelease
scales the app to 0, runs a real `kirana db restore` from that backup, and scales back.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from typing import Any

import psycopg
from kubernetes import client

from kirana.api.devstack import pg_bin_dir

from . import k8s
from .jobrunner import GROUP, VERSION, DeploymentWatch, Shop, shoprelease

NAME = "shop"
RETENTION = {"backup": {"retention": {"count": 2, "maxAgeDays": 7}}}


def create_backup(shop: Shop, name: str) -> None:
    shop.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        shop.namespace,
        "shopbackups",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ShopBackup",
            "metadata": {"name": name},
            "spec": {"releaseRef": {"name": NAME}},
        },
    )


def backup_status(shop: Shop, name: str) -> dict[str, Any]:
    obj = shop.custom.get_namespaced_custom_object(GROUP, VERSION, shop.namespace, "shopbackups", name)
    return dict(obj.get("status") or {})


def probe(shop: Shop, value: str | None = None) -> str:
    """A row the test writes and reads straight in the shop's database."""
    with psycopg.connect(shop.database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS e2e_probe (id int PRIMARY KEY, value text)")
        if value is not None:
            conn.execute(
                "INSERT INTO e2e_probe VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value",
                (value,),
            )
        row = conn.execute("SELECT value FROM e2e_probe WHERE id = 1").fetchone()
    return str(row[0]) if row else ""


def last_restore(shop: Shop) -> dict[str, Any] | None:
    restore = shop.get(NAME).get("status", {}).get("lastRestore")
    return restore if restore and restore.get("outcome") else None


def test_on_demand_backup_then_restore_with_the_app_scaled_down(shop: Shop) -> None:
    shop.apply(shoprelease(NAME, "1.0.0", **RETENTION))
    shop.wait_phase(NAME, "Ready")
    probe(shop, "before the sale")

    # Older on-demand archives already on the volume; retention keeps 2 per folder.
    folder = shop.storage / "pvc" / "shop-backups" / "on-demand"
    folder.mkdir(parents=True)
    now = time.time()
    for name, age_days in [("week-old", 6), ("two-days", 2), ("yesterday", 1)]:
        for suffix in (".dump", ".dump.json"):
            (folder / f"{name}{suffix}").write_text("{}")
            os.utime(folder / f"{name}{suffix}", (now - age_days * 86400,) * 2)

    create_backup(shop, "before-sale")
    status = k8s.wait_for(
        "the ShopBackup to finish",
        lambda: (s := backup_status(shop, "before-sale")).get("phase") in ("Completed", "Failed") and s,
        timeout=120,
    )
    assert status["phase"] == "Completed", (status, shop.runner.runs[-1].stderr)
    archive = folder / "before-sale.dump"
    assert status["path"] == "/backups/on-demand/before-sale.dump"
    assert status["size"] == archive.stat().st_size > 0
    assert status["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert status["schemaRevision"] == shop.schema_revision()
    assert sorted(p.name for p in folder.glob("*.dump")) == ["before-sale.dump", "yesterday.dump"]
    job = client.BatchV1Api(shop.api).read_namespaced_job(status["job"], shop.namespace)
    assert job.metadata.owner_references[0].kind == "ShopBackup"

    probe(shop, "after the sale")
    with DeploymentWatch(shop.api, shop.namespace, f"{NAME}-api") as api_watch:
        restore = {"backupName": "before-sale", "requestId": "2026-11-28-1"}
        shop.apply(shoprelease(NAME, "1.0.0", restore=restore, **RETENTION))
        record = k8s.wait_for("the restore to finish", lambda: last_restore(shop), timeout=180)
        shop.wait_phase(NAME, "Ready")
    assert record["outcome"] == "Succeeded", record
    assert record["requestId"] == "2026-11-28-1" and record["path"] == status["path"]
    assert probe(shop) == "before the sale"
    assert record["previousDatabase"], "the replaced database is kept"
    run = next(r for r in shop.runner.runs if r.argv[1:3] == ["db", "restore"])
    # The api was at 0 pods when the restore ran, and is back at full strength after.
    before = [s for s in api_watch.samples if s[0] <= run.started]
    assert before and before[-1][2] == 0 and before[-1][3] == 0, before[-3:]
    assert api_watch.samples[-1][2] == 2 and api_watch.samples[-1][3] == 2
    reasons = shop.event_reasons(NAME)
    assert (
        reasons.index("RestoreStarted")
        < reasons.index("DatabaseRestored")
        < reasons.index("RestoreCompleted")
    )

    # The same requestId again does nothing; a new one naming no backup is refused untouched.
    restores = len([r for r in shop.runner.runs if r.argv[1:3] == ["db", "restore"]])
    shop.apply(shoprelease(NAME, "1.0.0", restore={"backupName": "nope", "requestId": "2"}, **RETENTION))
    refused = k8s.wait_for(
        "the refusal", lambda: (r := last_restore(shop)) and r["requestId"] == "2" and r, timeout=60
    )
    assert refused["outcome"] == "Failed" and "ShopBackup nope does not exist" in refused["message"]
    assert len([r for r in shop.runner.runs if r.argv[1:3] == ["db", "restore"]]) == restores
    assert (
        client.AppsV1Api(shop.api).read_namespaced_deployment(f"{NAME}-api", shop.namespace).spec.replicas
        == 2
    )


def test_a_restore_waits_for_terminating_pods_to_be_gone(shop: Shop) -> None:
    """A Deployment stops counting a pod once it is terminating, but the pod can still write
    until it is gone: the restore must not start before then."""
    shop.apply(shoprelease(NAME, "1.0.0", **RETENTION))
    shop.wait_phase(NAME, "Ready")
    create_backup(shop, "nightly")
    k8s.wait_for(
        "the ShopBackup", lambda: backup_status(shop, "nightly").get("phase") == "Completed", timeout=120
    )
    core = client.CoreV1Api(shop.api)
    selector = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=api"
    held = core.list_namespaced_pod(shop.namespace, label_selector=selector).items[0].metadata.name
    hold = {"metadata": {"finalizers": ["kirana.test/hold"]}}
    core.patch_namespaced_pod(held, shop.namespace, hold)
    try:
        restore = {"backupName": "nightly", "requestId": "hold-1"}
        shop.apply(shoprelease(NAME, "1.0.0", restore=restore, **RETENTION))

        def waiting() -> dict[str, Any] | None:
            rec = shop.get(NAME).get("status", {}).get("lastRestore") or {}
            return rec if "pod(s) of the app to terminate" in rec.get("message", "") else None

        rec = k8s.wait_for("the restore to wait for the held pod", waiting, timeout=120)
        assert rec["step"] == "ScaleDown" and "1 pod(s)" in rec["message"], rec
        deployment = client.AppsV1Api(shop.api).read_namespaced_deployment(f"{NAME}-api", shop.namespace)
        assert (deployment.status.replicas or 0) == 0  # the Deployment no longer counts it
        assert core.read_namespaced_pod(held, shop.namespace).metadata.deletion_timestamp is not None
        time.sleep(3)  # a few more reconciles: still nothing restored
        assert not [r for r in shop.runner.runs if r.argv[1:3] == ["db", "restore"]]
    finally:
        core.patch_namespaced_pod(held, shop.namespace, {"metadata": {"finalizers": None}})
    record = k8s.wait_for("the restore to finish", lambda: last_restore(shop), timeout=180)
    assert record["outcome"] == "Succeeded", record
    assert [r for r in shop.runner.runs if r.argv[1:3] == ["db", "restore"]]


def test_deleting_a_release_takes_a_last_backup_first(shop: Shop) -> None:
    shop.apply(shoprelease(NAME, "1.0.0", backup={"onDelete": True, **RETENTION["backup"]}))
    shop.wait_phase(NAME, "Ready")
    probe(shop, "the last word")
    events_before = shop.event_reasons(NAME)
    shop.custom.delete_namespaced_custom_object(GROUP, VERSION, shop.namespace, "shopreleases", NAME)

    def gone() -> bool:
        items = shop.custom.list_namespaced_custom_object(GROUP, VERSION, shop.namespace, "shopreleases")
        return not items["items"]

    k8s.wait_for("the release to be deleted after its last backup", gone, timeout=120)
    runs = [r for r in shop.runner.runs if r.argv[1:3] == ["db", "backup"] and "final" in " ".join(r.argv)]
    assert len(runs) == 1 and runs[0].exit_code == 0, [r.argv for r in shop.runner.runs]
    archives = list((shop.storage / "pvc" / f"{NAME}-backups" / "final").glob(f"{NAME}-*.dump"))
    assert len(archives) == 1 and archives[0].stat().st_size > 0
    # The archive holds the data as it was at the deletion.
    with psycopg.connect(shop.database_url, autocommit=True) as conn:
        conn.execute("UPDATE e2e_probe SET value = 'changed later' WHERE id = 1")
    listing = subprocess.run(
        [str(pg_bin_dir() / "pg_restore"), "--data-only", "--table=e2e_probe", "-f", "-", str(archives[0])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "the last word" in listing
    assert "FinalBackupStarted" not in events_before
    reasons = shop.event_reasons(NAME)
    assert reasons.index("FinalBackupStarted") < reasons.index("FinalBackupCompleted"), reasons
