"""Retention over a backup folder (the same rules apply to an s3:// root): per origin folder, the
newest archive always stays, then at most `keep`, none older than `max_age_days`; final/ is never
pruned; manifests go with their archives."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kirana.api.db import archives
from kirana.api.db.objectstore import Location, Settings

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def put(root: Path, folder: str, name: str, age_days: float, manifest: bool = True) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    t = (NOW - timedelta(days=age_days)).timestamp()
    for f in [f"{name}.dump", *([f"{name}.dump.json"] if manifest else [])]:
        (root / folder / f).write_text("x")
        os.utime(root / folder / f, (t, t))


def test_prune_keeps_the_newest_then_count_and_age(tmp_path: Path) -> None:
    put(tmp_path, "on-demand", "a", 0.5)
    put(tmp_path, "on-demand", "b", 1)
    put(tmp_path, "on-demand", "c", 2)
    put(tmp_path, "scheduled", "old-but-newest", 40)  # alone and old: still kept
    put(tmp_path, "pre-upgrade", "p1", 1)
    put(tmp_path, "pre-upgrade", "p2", 20)  # within count, too old
    put(tmp_path, "final", "f1", 100)
    put(tmp_path, "final", "f2", 200)
    pruned = archives.prune(tmp_path, keep=2, max_age_days=14, now=NOW)
    assert sorted(Path(p).name for p in pruned) == ["c.dump", "p2.dump"]
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == [
        "final/f1.dump", "final/f1.dump.json", "final/f2.dump", "final/f2.dump.json",
        "on-demand/a.dump", "on-demand/a.dump.json", "on-demand/b.dump", "on-demand/b.dump.json",
        "pre-upgrade/p1.dump", "pre-upgrade/p1.dump.json",
        "scheduled/old-but-newest.dump", "scheduled/old-but-newest.dump.json",
    ]  # fmt: skip


def test_listing_is_newest_first_per_folder_and_flags_unfinished_archives(tmp_path: Path) -> None:
    put(tmp_path, "on-demand", "older", 2)
    put(tmp_path, "on-demand", "newer", 1, manifest=False)
    put(tmp_path, "scheduled", "s", 3)
    found = [(a.folder, Path(a.location).name, a.complete) for a in archives.list_archives(tmp_path)]
    assert found == [
        ("scheduled", "s.dump", True),
        ("on-demand", "newer.dump", False),
        ("on-demand", "older.dump", True),
    ]


def test_s3_locations_and_settings() -> None:
    loc = Location.parse("s3://bucket/prod/shop/on-demand/x.dump")
    assert (loc.bucket, loc.key, loc.name) == ("bucket", "prod/shop/on-demand/x.dump", "x.dump")
    assert str(loc.manifest) == "s3://bucket/prod/shop/on-demand/x.dump.json"
    assert Location.parse("s3://bucket").child("scheduled").key == "scheduled"
    env = {
        "KIRANA_BACKUP_S3_SSE": "aws:kms",
        "KIRANA_BACKUP_S3_SSE_KMS_KEY_ID": "k",
        "KIRANA_BACKUP_S3_PATH_STYLE": "true",
    }
    s = Settings.from_env(env)
    assert s.path_style and s.put_args() == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "k"}
    assert Settings.from_env({"KIRANA_BACKUP_S3_SSE": "AES256"}).put_args() == {
        "ServerSideEncryption": "AES256"
    }
    assert Settings.from_env({}).put_args() == {}


def test_store_errors_name_the_bucket_the_code_and_what_to_fix() -> None:
    from botocore.exceptions import ClientError

    from kirana.api.db.objectstore import describe

    def err(code: str, message: str = "") -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": message}}, "ListObjectsV2")

    where = "s3://shop"
    assert str(describe(err("NoSuchBucket", "The specified bucket does not exist."), "reaching", where)) == (
        "reaching s3://shop failed: NoSuchBucket (The specified bucket does not exist.); "
        "create the bucket or fix spec.backup.storage.s3.bucket"
    )
    assert "check the credentials Secret" in str(describe(err("InvalidAccessKeyId"), "uploading", where))
    assert "out of space" in str(describe(err("XMinioStorageFull"), "uploading", where))
    assert str(describe(err("SlowDown", "Reduce your rate"), "listing", where)) == (
        "listing s3://shop failed: SlowDown (Reduce your rate)"
    )
