"""A real S3-compatible server on loopback for the backup tests: Versity Gateway (`versitygw`) in
front of a folder, built from source by `make tools` (pinned in testbed/versions.env).

It checks AWS Signature V4 on every request (so wrong credentials fail as they would on AWS),
serves multipart uploads, listing and deletes, and keeps each bucket as a directory, so a test
can also look at what landed on its disk. Used by tests/e2e/test_operator_s3.py.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from kirana.api.devstack import free_port

from .jobrunner import REPO

BINARY = REPO / ".local" / "bin" / "versitygw"
ACCESS_KEY = "kirana-e2e"
SECRET_KEY = "kirana-e2e-" + uuid.uuid4().hex  # per test session


@dataclass
class S3Server:
    endpoint: str
    root: Path  # the folder the buckets live in
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    def client(self, secret_key: str | None = None) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(region_name="us-east-1", s3={"addressing_style": "path"}),
        )

    def bucket(self) -> str:
        name = f"shop-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if not BINARY.is_file():
        pytest.fail(f"{BINARY} is missing: run `make tools` (it builds versitygw)")
    base = tmp_path_factory.mktemp("s3")
    root, meta, iam = base / "data", base / "meta", base / "iam"
    for d in (root, meta, iam):
        d.mkdir()
    port = free_port()
    log = (base / "versitygw.log").open("wb")
    proc = subprocess.Popen(
        [
            str(BINARY),
            "--access",
            ACCESS_KEY,
            "--secret",
            SECRET_KEY,
            "--port",
            f"127.0.0.1:{port}",
            "--iam-dir",
            str(iam),
            "posix",
            "--sidecar",
            str(meta),
            str(root),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"versitygw did not start: {(base / 'versitygw.log').read_text()[-2000:]}")
                time.sleep(0.1)
        yield S3Server(endpoint=f"http://127.0.0.1:{port}", root=root)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
