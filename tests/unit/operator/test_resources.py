"""Jobs of a ShopRelease whose backups go to S3: archives under s3://bucket/prefix/<origin>/, no
volume, the bucket's settings and the credentials Secret's keys in the environment."""

from __future__ import annotations

from typing import Any

from kirana.operator.plan import resources as res
from kirana.operator.plan.model import Owner
from kirana.operator.spec import parse_spec

OWNER = Owner(name="shop", namespace="prod", uid="u-1")
S3 = {
    "bucket": "kirana-backups",
    "prefix": "/prod/shop/",
    "endpoint": "https://s3.example.test",
    "region": "ap-south-1",
    "credentialsSecret": "shop-s3",
    "serverSideEncryption": "aws:kms",
    "kmsKeyId": "alias/kirana",
    "forcePathStyle": True,
}
SPEC = parse_spec(
    {
        "version": "2.0.0",
        "config": {"secretName": "shop-env"},
        "backup": {
            "storage": {"s3": S3},
            "schedule": "0 3 * * *",
            "retention": {"count": 3, "maxAgeDays": 9},
        },
    }
)


def container(job: dict[str, Any]) -> dict[str, Any]:
    spec = job["spec"]["jobTemplate"]["spec"] if job["kind"] == "CronJob" else job["spec"]
    return dict(spec["template"]["spec"]["containers"][0])


def test_paths_live_under_the_bucket_prefix() -> None:
    root = "s3://kirana-backups/prod/shop"
    assert res.backup_root(SPEC) == root
    assert (
        res.pre_upgrade_backup_path(OWNER, SPEC, "2.0.0", "abc") == f"{root}/pre-upgrade/shop-2.0.0-abc.dump"
    )
    assert res.on_demand_backup_path(SPEC, "nightly") == f"{root}/on-demand/nightly.dump"
    assert res.final_backup_path(OWNER, SPEC, "2026-12-01T00:00:00Z").startswith(f"{root}/final/shop-")
    bare = parse_spec(
        {"version": "1", "config": {"secretName": "e"}, "backup": {"storage": {"s3": {**S3, "prefix": ""}}}}
    )
    assert res.backup_root(bare) == "s3://kirana-backups"


def test_jobs_get_the_bucket_settings_and_the_secret_keys_but_no_volume() -> None:
    job = res.db_job(
        OWNER, SPEC, step="backup", key="k", image="i", version="2.0.0", args=["db"], timeout_seconds=60
    )
    pod = job["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    env = {e["name"]: e for e in container(job)["env"]}
    plain = {k: e["value"] for k, e in env.items() if "value" in e}
    assert plain == {
        "KIRANA_BACKUP_DIR": "s3://kirana-backups/prod/shop",
        "KIRANA_BACKUP_S3_REGION": "ap-south-1",
        "KIRANA_BACKUP_S3_PATH_STYLE": "true",
        "KIRANA_BACKUP_S3_ENDPOINT": "https://s3.example.test",
        "KIRANA_BACKUP_S3_SSE": "aws:kms",
        "KIRANA_BACKUP_S3_SSE_KMS_KEY_ID": "alias/kirana",
    }
    refs = {k: e["valueFrom"]["secretKeyRef"] for k, e in env.items() if "valueFrom" in e}
    assert refs == {
        "AWS_ACCESS_KEY_ID": {"name": "shop-s3", "key": "AWS_ACCESS_KEY_ID"},
        "AWS_SECRET_ACCESS_KEY": {"name": "shop-s3", "key": "AWS_SECRET_ACCESS_KEY"},
        "AWS_SESSION_TOKEN": {"name": "shop-s3", "key": "AWS_SESSION_TOKEN", "optional": True},
    }


def test_scheduled_backups_stream_to_scheduled_and_prune_the_bucket() -> None:
    cron = res.backup_cronjob(OWNER, SPEC, "kirana-api:2.0.0", "2.0.0")
    c = container(cron)
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["BACKUP_ROOT"] == "s3://kirana-backups/prod/shop"
    assert env["RETAIN_COUNT"] == "3" and env["RETAIN_DAYS"] == "9"
    script = c["command"][2]
    assert "$BACKUP_ROOT/scheduled/$(date -u" in script and 'kirana db prune "$BACKUP_ROOT"' in script
    assert [v["name"] for v in cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]] == ["tmp"]
