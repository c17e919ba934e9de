"""The `kirana` command line as scripts and the operator's Jobs use it: exit codes and --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def kirana(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KIRANA_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "kirana.api", *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_current_and_history_as_json(database_url: str) -> None:
    env = {"KIRANA_DATABASE_URL": database_url}
    current = kirana("db", "current", "--json", env=env)
    assert current.returncode == 0, current.stderr
    data = json.loads(current.stdout)
    assert data["up_to_date"] is True and data["current"] == data["head"]
    history = json.loads(kirana("db", "history", "--json", env=env).stdout)
    assert history[-1]["revision"] == data["head"]


def test_backup_verify_restore_round_trip(database_url: str, tmp_path: Path) -> None:
    env = {"KIRANA_DATABASE_URL": database_url}
    archive = tmp_path / "x.dump"
    backup = kirana("db", "backup", "--out", str(archive), "--json", env=env)
    assert backup.returncode == 0, backup.stderr
    manifest = json.loads(backup.stdout)
    assert Path(manifest["manifest"]).exists()
    verify = kirana("db", "verify", str(archive), "--json", env=env)
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True
    restore = kirana("db", "restore", str(archive), "--drop-previous", "--json", env=env)
    assert restore.returncode == 0, restore.stderr
    assert json.loads(restore.stdout)["previous_database"] is None


def test_corrupt_archive_exits_1_with_one_line(database_url: str, tmp_path: Path) -> None:
    env = {"KIRANA_DATABASE_URL": database_url}
    archive = tmp_path / "x.dump"
    assert kirana("db", "backup", "--out", str(archive), env=env).returncode == 0
    archive.write_bytes(archive.read_bytes()[:100])
    result = kirana("db", "restore", str(archive), env=env)
    assert result.returncode == 1
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "corrupt" in lines[0]


def test_rollback_to_base_needs_allow_base(database_url: str) -> None:
    env = {"KIRANA_DATABASE_URL": database_url}
    refused = kirana("db", "rollback", "--to", "base", env=env)
    assert refused.returncode == 1 and "drops every table" in refused.stderr
    assert json.loads(kirana("db", "current", "--json", env=env).stdout)["up_to_date"] is True
    allowed = kirana("db", "rollback", "--to", "base", "--allow-base", "--json", env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["to"] is None


def test_restoring_another_databases_archive_needs_allow_other_database(
    database_url: str, tmp_path: Path
) -> None:
    env = {"KIRANA_DATABASE_URL": database_url}
    archive = tmp_path / "x.dump"
    assert kirana("db", "backup", "--out", str(archive), env=env).returncode == 0
    manifest_file = tmp_path / "x.dump.json"
    manifest = json.loads(manifest_file.read_text())
    manifest_file.write_text(json.dumps(manifest | {"database": "another_shop"}))
    refused = kirana("db", "restore", str(archive), env=env)
    assert refused.returncode == 1 and "another_shop" in refused.stderr
    allowed = kirana("db", "restore", str(archive), "--allow-other-database", "--drop-previous", env=env)
    assert allowed.returncode == 0, allowed.stderr


def test_bad_setting_exits_2_naming_the_variable() -> None:
    result = kirana("db", "current", env={"KIRANA_DATABASE_URL": "mysql://nope", "KIRANA_DB_POOL_SIZE": "0"})
    assert result.returncode == 2
    assert "KIRANA_DATABASE_URL" in result.stderr and "KIRANA_DB_POOL_SIZE" in result.stderr


def test_production_refuses_placeholder_secret(database_url: str) -> None:
    result = kirana(
        "db",
        "current",
        env={
            "KIRANA_DATABASE_URL": database_url,
            "KIRANA_ENVIRONMENT": "production",
            "KIRANA_SECRET_KEY": "changeme",
        },
    )
    assert result.returncode == 2
    assert "KIRANA_SECRET_KEY" in result.stderr


def test_production_api_and_worker_refuse_empty_razorpay_secrets(database_url: str) -> None:
    env = {
        "KIRANA_DATABASE_URL": database_url,
        "KIRANA_REDIS_URL": "redis://127.0.0.1:1/0",
        "KIRANA_ENVIRONMENT": "production",
        "KIRANA_SECRET_KEY": "a-real-production-secret-of-enough-length-123",
        "KIRANA_RAZORPAY_KEY_ID": "rzp_live_abc",
        "KIRANA_RAZORPAY_KEY_SECRET": " ",
    }
    api = kirana("serve", env=env)
    assert api.returncode == 2
    lines = [line for line in api.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, api.stderr
    assert "KIRANA_RAZORPAY_KEY_SECRET, KIRANA_RAZORPAY_WEBHOOK_SECRET empty in production" in lines[0]
    worker = subprocess.run(
        [sys.executable, "-m", "kirana.workers"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("KIRANA_")} | env,
        timeout=120,
    )
    assert worker.returncode == 2 and worker.stderr.count("\n") == 1
    assert "KIRANA_RAZORPAY_KEY_SECRET" in worker.stderr


def test_unreachable_database_is_a_clear_error() -> None:
    result = kirana("db", "migrate", env={"KIRANA_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"})
    assert result.returncode == 1
    assert "database error" in result.stderr
    assert "Traceback" not in result.stderr


def test_create_owner_bootstraps_once_and_is_audited(database_url: str) -> None:
    env = {"KIRANA_DATABASE_URL": database_url, "KIRANA_OWNER_PASSWORD": "a-long-owner-passphrase"}
    weak = kirana(
        "accounts",
        "create-owner",
        "--email",
        "boss@example.com",
        env=env | {"KIRANA_OWNER_PASSWORD": "short"},
    )
    assert weak.returncode == 1 and "at least" in weak.stderr

    made = kirana(
        "accounts", "create-owner", "--email", "Boss@Example.com", "--name", "Boss", "--json", env=env
    )
    assert made.returncode == 0, made.stderr
    user_id = json.loads(made.stdout)["user_id"]

    again = kirana("accounts", "create-owner", "--email", "other@example.com", env=env)
    assert again.returncode == 1 and "already has an owner" in again.stderr

    audit = kirana("audit", "verify", "--json", env=env)
    assert audit.returncode == 0 and json.loads(audit.stdout)["ok"] is True
    exported = [json.loads(line) for line in kirana("audit", "export", env=env).stdout.splitlines()]
    assert any(e["action"] == "access.owner_bootstrapped" and e["target_id"] == user_id for e in exported)
