"""Backups in S3-compatible object storage: `s3://bucket/key` locations, an archive streamed up
while it is hashed and then read back to check it, manifests beside the archives, listing and
deleting.

Used by `kirana.api.db.lifecycle` (backup, verify, restore) and `kirana.api.db.archives` (list,
prune) whenever a location starts with `s3://`. Configured from the environment the operator's
Jobs get (`spec.backup.storage.s3`):

    KIRANA_BACKUP_S3_ENDPOINT       endpoint URL (unset: AWS)
    KIRANA_BACKUP_S3_REGION         region (default us-east-1)
    KIRANA_BACKUP_S3_PATH_STYLE     "true": path-style addressing (most S3-compatible servers)
    KIRANA_BACKUP_S3_SSE            server-side encryption: AES256 or aws:kms (unset: none asked)
    KIRANA_BACKUP_S3_SSE_KMS_KEY_ID the KMS key for aws:kms
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN): boto3's own credential chain

Every failure is an `ObjectStoreError` with one sentence naming the bucket and what the server
said (bad credentials, a missing bucket, a full disk), for the Job's termination message.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import boto3  # type: ignore[import-untyped]
from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

SCHEME = "s3://"
CHUNK = 8 * 1024 * 1024  # multipart part size: at most a few of these are in memory at once
ENV = "KIRANA_BACKUP_S3_"
SSE_VALUES = ("AES256", "aws:kms")


class ObjectStoreError(RuntimeError):
    """Object storage refused or failed; the message names the bucket and the server's reason."""


def is_remote(location: str | os.PathLike[str]) -> bool:
    return str(location).startswith(SCHEME)


@dataclass(frozen=True)
class Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str) -> Location:
        if not is_remote(url):
            raise ObjectStoreError(f"{url} is not an s3:// location")
        bucket, _, key = url[len(SCHEME) :].partition("/")
        if not bucket:
            raise ObjectStoreError(f"{url} names no bucket")
        return cls(bucket, key.strip("/"))

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    def child(self, name: str) -> Location:
        return Location(self.bucket, f"{self.key}/{name}".strip("/"))

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def manifest(self) -> Location:
        return Location(self.bucket, self.key + ".json")


@dataclass(frozen=True)
class Settings:
    endpoint: str | None = None
    region: str = "us-east-1"
    path_style: bool = False
    sse: str | None = None
    sse_kms_key_id: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        sse = env.get(ENV + "SSE") or None
        if sse is not None and sse not in SSE_VALUES:
            raise ObjectStoreError(f"{ENV}SSE={sse!r}: must be one of {', '.join(SSE_VALUES)}")
        return cls(
            endpoint=env.get(ENV + "ENDPOINT") or None,
            region=env.get(ENV + "REGION") or "us-east-1",
            path_style=(env.get(ENV + "PATH_STYLE") or "").lower() in ("1", "true", "yes"),
            sse=sse,
            sse_kms_key_id=env.get(ENV + "SSE_KMS_KEY_ID") or None,
        )

    def put_args(self) -> dict[str, str]:
        """The server-side encryption headers every PUT carries."""
        args: dict[str, str] = {}
        if self.sse:
            args["ServerSideEncryption"] = self.sse
            if self.sse == "aws:kms" and self.sse_kms_key_id:
                args["SSEKMSKeyId"] = self.sse_kms_key_id
        return args


def describe(exc: BaseException, what: str, where: Location | str) -> ObjectStoreError:
    """One sentence for a boto3 failure: what was tried, where, and the server's code and words."""
    if isinstance(exc, ObjectStoreError):
        return exc
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code") or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))
        message = err.get("Message") or ""
        hint = {
            "InvalidAccessKeyId": "check the credentials Secret",
            "SignatureDoesNotMatch": "check the credentials Secret",
            "AccessDenied": "check the credentials Secret and the bucket policy",
            "403": "access denied: check the credentials Secret and the bucket policy",
            "NoSuchBucket": "create the bucket or fix spec.backup.storage.s3.bucket",
            "404": "no such bucket: create it or fix spec.backup.storage.s3.bucket",
            "EntityTooLarge": "the archive is larger than the server accepts",
            "XMinioStorageFull": "the object store is out of space",
            "StorageFull": "the object store is out of space",
        }.get(code, "")
        detail = f"{code}" + (f" ({message})" if message else "") + (f"; {hint}" if hint else "")
        return ObjectStoreError(f"{what} {where} failed: {detail}")
    if isinstance(exc, BotoCoreError):
        return ObjectStoreError(f"{what} {where} failed: {exc}")
    return ObjectStoreError(f"{what} {where} failed: {type(exc).__name__}: {exc}")


class Store:
    """One S3 client with the settings above; every method raises `ObjectStoreError`."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        s = self.settings
        config = Config(
            region_name=s.region,
            s3={"addressing_style": "path" if s.path_style else "auto"},
            retries={"max_attempts": 4, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
            # Our own sha256 is the end-to-end check; extra checksum trailers are left to AWS.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client: Any = boto3.session.Session().client("s3", endpoint_url=s.endpoint, config=config)

    def check_bucket(self, loc: Location) -> None:
        """Fail fast, before any work, when the bucket is missing or the credentials do not fit."""
        try:  # not HEAD: its error answers carry no code, and "403" alone explains nothing
            self.client.list_objects_v2(Bucket=loc.bucket, Prefix=loc.key, MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            raise describe(exc, "reaching bucket", f"{SCHEME}{loc.bucket}") from exc

    def upload(self, loc: Location, stream: IO[bytes]) -> tuple[int, str]:
        """Stream `stream` to `loc` in parts (never a whole local copy); its size and sha256."""
        reader = _Hashing(stream)
        transfer = TransferConfig(
            multipart_threshold=CHUNK, multipart_chunksize=CHUNK, max_concurrency=2, use_threads=True
        )
        try:
            self.client.upload_fileobj(
                reader, loc.bucket, loc.key, ExtraArgs=self.settings.put_args() or None, Config=transfer
            )
        except Exception as exc:
            raise describe(exc, "uploading", loc) from exc
        return reader.size, reader.sha256.hexdigest()

    def read_back(self, loc: Location) -> tuple[int, str]:
        """Size and sha256 of the object as the server now serves it (read in a stream)."""
        size, digest = 0, hashlib.sha256()
        for chunk in self.chunks(loc):
            size += len(chunk)
            digest.update(chunk)
        return size, digest.hexdigest()

    def chunks(self, loc: Location) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=loc.bucket, Key=loc.key)["Body"]
            yield from body.iter_chunks(1 << 20)
        except (ClientError, BotoCoreError) as exc:
            raise describe(exc, "reading", loc) from exc

    def size(self, loc: Location) -> int | None:
        """The object's size, or None when there is no such object."""
        try:
            return int(self.client.head_object(Bucket=loc.bucket, Key=loc.key)["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise describe(exc, "reading", loc) from exc
        except BotoCoreError as exc:
            raise describe(exc, "reading", loc) from exc

    def put_json(self, loc: Location, value: Any) -> None:
        body = (json.dumps(value, indent=2) + "\n").encode()
        try:
            self.client.put_object(
                Bucket=loc.bucket,
                Key=loc.key,
                Body=body,
                ContentType="application/json",
                **self.settings.put_args(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise describe(exc, "writing", loc) from exc

    def get_json(self, loc: Location) -> Any | None:
        """The JSON document at `loc`, or None when there is none."""
        if self.size(loc) is None:
            return None
        raw = b"".join(self.chunks(loc))
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ObjectStoreError(f"{loc} is not valid JSON: {exc}") from exc

    def delete(self, loc: Location) -> None:
        try:
            self.client.delete_object(Bucket=loc.bucket, Key=loc.key)
        except (ClientError, BotoCoreError) as exc:
            raise describe(exc, "deleting", loc) from exc

    def list(self, prefix: Location) -> list[tuple[Location, int, datetime]]:
        """(location, size, last modified) of every object under `prefix/`."""
        out: list[tuple[Location, int, datetime]] = []
        start = prefix.key + "/" if prefix.key else ""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=start)
            for page in pages:
                for item in page.get("Contents", []):
                    out.append(
                        (Location(prefix.bucket, item["Key"]), int(item["Size"]), item["LastModified"])
                    )
        except (ClientError, BotoCoreError) as exc:
            raise describe(exc, "listing", prefix) from exc
        return out


class _Hashing:
    """A read-only stream that hashes and counts what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data
