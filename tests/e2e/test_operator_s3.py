"""Backups in S3-compatible object storage, end to end against a real S3 server on loopback
(versitygw, tests/e2e/s3server.py), with the real operator and the real `kirana db` commands.

`spec.backup.storage.s3`: the pre-upgrade and on-demand backups stream to
`s3://bucket/prefix/<origin>/` (nothing is written to a volume), each with its manifest and the
sha256 the release records; they are listed with `kirana db list`, pruned to the retention, and
a restore (`spec.restore`) reads the archive back from the bucket. Wrong credentials and a missing
bucket fail the backup Job with the server's reason in the status, and the upgrade behind it does
not go on: the database stays at the old revision, the app on the old version.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from typing import Any

import pytest
from kubernetes import client

from . import k8s
from .jobrunner import BIN, Shop, shoprelease
from .s3server import S3Server
from .test_operator_backup import backup_status, create_backup, last_restore, probe

NAME = "shop"
PREFIX = "prod/kirana"


def s3_spec(s3: S3Server, bucket: str, *, keep: int = 7) -> dict[str, Any]:
    return {
        "backup": {
            "retention": {"count": keep, "maxAgeDays": 7},
            "storage": {
                "s3": {
                    "endpoint": s3.endpoint,
                    "bucket": bucket,
                    "prefix": PREFIX,
                    "credentialsSecret": "shop-s3",
                    "serverSideEncryption": "AES256",
                    "forcePathStyle": True,
                }
            },
        }
    }


def s3_secret(shop: Shop, s3: S3Server, secret_key: str | None = None) -> None:
    client.CoreV1Api(shop.api).create_namespaced_secret(
        shop.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="shop-s3"),
            string_data={
                "AWS_ACCESS_KEY_ID": s3.access_key,
                "AWS_SECRET_ACCESS_KEY": secret_key or s3.secret_key,
            },
        ),
    )


def sha256_of(s3: S3Server, bucket: str, key: str) -> tuple[int, str]:
    body = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return len(body), hashlib.sha256(body).hexdigest()


def kirana_db(s3: S3Server, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIRANA_", "AWS_"))}
    env |= {
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "KIRANA_BACKUP_S3_ENDPOINT": s3.endpoint,
        "KIRANA_BACKUP_S3_PATH_STYLE": "true",
    }
    done = subprocess.run(
        [str(BIN / "kirana"), "db", *args, "--json"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_backups_stream_to_s3_are_checked_listed_and_pruned(shop: Shop, s3_server: S3Server) -> None:
    bucket = s3_server.bucket()
    s3_secret(shop, s3_server)
    spec = s3_spec(s3_server, bucket, keep=1)
    shop.apply(shoprelease(NAME, "1.0.0", **spec))
    shop.wait_phase(NAME, "Ready")
    v1_revision = shop.schema_revision()
    probe(shop, "before the upgrade")

    shop.apply(shoprelease(NAME, "2.0.0", **spec))
    status = shop.wait_phase(NAME, "Ready", timeout=180)["status"]
    assert status["currentVersion"] == "2.0.0"
    backup = status["lastBackup"]
    root = f"s3://{bucket}/{PREFIX}"
    assert backup["path"].startswith(f"{root}/pre-upgrade/{NAME}-2.0.0-") and backup["path"].endswith(".dump")
    key = backup["path"].removeprefix(f"s3://{bucket}/")
    # What the bucket holds is exactly what the release recorded: size and sha256.
    assert sha256_of(s3_server, bucket, key) == (backup["size"], backup["sha256"])
    assert backup["schemaRevision"] == v1_revision
    manifest = json.loads(s3_server.client().get_object(Bucket=bucket, Key=key + ".json")["Body"].read())
    assert manifest["sha256"] == backup["sha256"] and manifest["server_side_encryption"] == "AES256"
    assert not (shop.storage / "pvc").exists()  # nothing went to a volume

    # On-demand backups go to on-demand/; retention keeps 1 there (the newest).
    for name in ("b1", "b2"):
        create_backup(shop, name)
        done = k8s.wait_for(
            f"ShopBackup {name}",
            lambda name=name: (s := backup_status(shop, name)).get("phase") in ("Completed", "Failed") and s,
            timeout=120,
        )
        assert done["phase"] == "Completed", (done, shop.runner.runs[-1].stderr[-2000:])
        assert done["path"] == f"{root}/on-demand/{name}.dump"
    assert [k for k in s3_server.keys(bucket, f"{PREFIX}/on-demand/")] == [
        f"{PREFIX}/on-demand/b2.dump",
        f"{PREFIX}/on-demand/b2.dump.json",
    ]  # b1 and its manifest were pruned

    listed = kirana_db(s3_server, "list", root)
    assert [(a["folder"], a["location"].rsplit("/", 1)[1], a["complete"]) for a in listed] == [
        ("pre-upgrade", backup["path"].rsplit("/", 1)[1], True),
        ("on-demand", "b2.dump", True),
    ]


def test_a_restore_reads_the_archive_from_the_bucket_and_refuses_a_corrupted_one(
    shop: Shop, s3_server: S3Server
) -> None:
    bucket = s3_server.bucket()
    s3_secret(shop, s3_server)
    spec = s3_spec(s3_server, bucket)
    shop.apply(shoprelease(NAME, "1.0.0", **spec))
    shop.wait_phase(NAME, "Ready")
    probe(shop, "before the sale")
    create_backup(shop, "nightly")
    done = k8s.wait_for(
        "the ShopBackup",
        lambda: (s := backup_status(shop, "nightly")).get("phase") == "Completed" and s,
        timeout=120,
    )
    probe(shop, "after the sale")
    shop.apply(shoprelease(NAME, "1.0.0", restore={"backupName": "nightly", "requestId": "s3-1"}, **spec))
    record = k8s.wait_for("the restore to finish", lambda: last_restore(shop), timeout=180)
    assert record["outcome"] == "Succeeded", record
    assert record["path"] == done["path"] and probe(shop) == "before the sale"
    restore_run = next(r for r in shop.runner.runs if r.argv[1:3] == ["db", "restore"])
    assert restore_run.argv[3] == done["path"]  # read from the bucket, no copy on a volume

    # The same object with other bytes (same size): refused, the live database untouched.
    key = done["path"].removeprefix(f"s3://{bucket}/")
    body = s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    flipped = body[:-100] + bytes(b ^ 0xFF for b in body[-100:])
    s3_server.client().put_object(Bucket=bucket, Key=key, Body=flipped)
    probe(shop, "live data")
    shop.apply(shoprelease(NAME, "1.0.0", restore={"backupName": "nightly", "requestId": "s3-2"}, **spec))
    record = k8s.wait_for(
        "the second restore to end",
        lambda: (r := last_restore(shop)) and r["requestId"] == "s3-2" and r,
        timeout=180,
    )
    assert record["outcome"] == "Failed", record
    assert "the database was left as it was" in record["message"]
    assert probe(shop) == "live data"


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("wrong-secret", "SignatureDoesNotMatch"),
        ("missing-bucket", "NoSuchBucket"),
    ],
)
def test_a_failing_s3_backup_stops_the_upgrade_with_the_reason(
    shop: Shop, s3_server: S3Server, fault: str, reason: str
) -> None:
    bucket = s3_server.bucket()
    s3_secret(shop, s3_server, secret_key="not-the-secret" if fault == "wrong-secret" else None)
    target = f"{bucket}-gone" if fault == "missing-bucket" else bucket
    spec = s3_spec(s3_server, target)
    shop.apply(shoprelease(NAME, "1.0.0", **spec))  # an install takes no backup
    shop.wait_phase(NAME, "Ready")
    v1_revision = shop.schema_revision()

    shop.apply(shoprelease(NAME, "2.0.0", **spec))
    status = shop.wait_phase(NAME, "Degraded", timeout=180)["status"]
    failure = status["release"]["failure"]
    assert failure["step"] == "Backup" and failure["reason"] == "BackupFailed", failure
    assert reason in failure["message"] and target in failure["message"], failure
    assert shop.runner.commands() == ["db migrate", "db backup"]  # no migration after it
    assert shop.schema_revision() == v1_revision and status["currentVersion"] == "1.0.0"
    assert shop.deployment_images(NAME) == {"api": "kirana-api:1.0.0", "workers": "kirana-api:1.0.0"}
    assert s3_server.keys(bucket) == []  # nothing half-written left behind
