"""The API server, with the chart's CRD, refuses bad ShopReleases with messages an SRE understands;
the operator generates the scheduled backup CronJob, whose Job backs up and prunes to retention."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import k8s
from .jobrunner import GROUP, PLURAL, VERSION, Shop, shoprelease

NAME = "shop"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"version": "latest"}, "version latest is not a semantic version"),
        ({"rollout": {"maxSurge": 0, "maxUnavailable": 0}}, "cannot both be 0"),
        ({"backup": {"schedule": "daily at 2"}}, "5 fields"),
        ({"backup": {"beforeUpgrade": True}}, "nowhere to write the pre-upgrade backup"),
        (
            {"backup": {"beforeUpgrade": False, "onDelete": True}, "failurePolicy": {"database": "Freeze"}},
            "the final backup has nowhere to go",
        ),
        (
            {"failurePolicy": {"database": "Restore"}, "backup": {"beforeUpgrade": False}},
            "no pre-upgrade backup",
        ),
        ({"failurePolicy": {"database": "Pray"}}, 'supported values: "Restore", "Downgrade", "Freeze"'),
        ({"api": {"replicas": 0}}, "spec.api.replicas"),
    ],
)
def test_invalid_manifest_is_rejected_with_a_clear_message(
    api: client.ApiClient, namespace: str, crd_installed: None, spec: dict[str, object], message: str
) -> None:
    body = shoprelease(NAME, "1.0.0")
    if "backup" in spec:
        body["spec"].pop("backup")
    body["spec"].update(spec)
    with pytest.raises(ApiException) as exc:
        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    assert exc.value.status == 422
    assert message in json.loads(exc.value.body)["message"]


def test_scheduled_backup_cronjob_backs_up_and_prunes(shop: Shop) -> None:
    spec = {"backup": {"schedule": "0 3 * * *", "retention": {"count": 2, "maxAgeDays": 7}}}
    shop.apply(shoprelease(NAME, "1.0.0", **spec))
    shop.wait_phase(NAME, "Ready")
    batch = client.BatchV1Api(shop.api)
    cron = k8s.wait_for(
        "the backup CronJob",
        lambda: next(iter(batch.list_namespaced_cron_job(shop.namespace).items), None),
    )
    assert cron.spec.schedule == "0 3 * * *" and cron.spec.concurrency_policy == "Forbid"
    assert cron.metadata.owner_references[0].kind == "ShopRelease"

    # Backups already on the volume: one older than maxAgeDays, three recent ones.
    folder = shop.storage / "pvc" / "shop-backups" / "scheduled"
    folder.mkdir(parents=True)
    now = time.time()
    for name, age_days in [("ancient", 30), ("old", 3), ("older", 4), ("recent", 1)]:
        for suffix in (".dump", ".dump.json"):
            path = folder / f"{name}{suffix}"
            path.write_text("{}")
            os.utime(path, (now - age_days * 86400, now - age_days * 86400))

    # What the CronJob controller does at 03:00, done now (as `kubectl create job --from=cronjob/...`).
    job = client.V1Job(
        metadata=client.V1ObjectMeta(
            name="shop-backup-manual",
            labels=cron.spec.job_template.metadata.labels,
            owner_references=[
                client.V1OwnerReference(
                    api_version="batch/v1", kind="CronJob", name=cron.metadata.name, uid=cron.metadata.uid
                )
            ],
        ),
        spec=cron.spec.job_template.spec,
    )
    batch.create_namespaced_job(shop.namespace, job)

    def finished() -> str | None:
        j = batch.read_namespaced_job_status("shop-backup-manual", shop.namespace)
        done = [
            c.type
            for c in j.status.conditions or []
            if c.type in ("Complete", "Failed") and c.status == "True"
        ]
        return done[0] if done else None

    outcome = k8s.wait_for("the scheduled backup Job to finish", finished, timeout=120)
    run = shop.runner.runs[-1]
    assert outcome == "Complete", run.stderr
    left = sorted(p.name for p in folder.glob("*.dump"))
    # Retention count 2: the new backup and the newest old one stay; the rest are pruned.
    assert "recent.dump" in left and len(left) == 2, (left, run.stdout, run.stderr)
    new = next(p for p in folder.glob("*.dump") if p.name != "recent.dump")
    manifest = json.loads(Path(f"{new}.json").read_text())
    assert manifest["size"] == new.stat().st_size > 0
    assert not (folder / "ancient.dump.json").exists()
