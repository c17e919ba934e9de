"""The audit log: append-only in the database, tamper detection by `kirana audit verify`,
query API with cursor pages, JSON-lines export."""

from __future__ import annotations

import json

import psycopg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from typer.testing import CliRunner

from kirana.api.cli import app as cli
from kirana.api.settings import Settings
from tests.integration.access.helpers import make_user, signed_in


def _verify(settings: Settings) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(
        cli, ["audit", "verify", "--json"], env={"KIRANA_DATABASE_URL": settings.database_url}
    )
    return result.exit_code, json.loads(result.stdout)


async def _some_events(app: FastAPI, client: AsyncClient) -> None:
    for _ in range(3):
        account = await make_user(app)
        await client.post("/v1/auth/login", json={"identifier": account.email, "password": "wrong-password!"})


def _sql(settings: Settings, *statements: str) -> None:
    """Run statements as the superuser, with the append-only trigger bypassed."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        for s in statements:
            conn.execute(s)


async def test_database_refuses_update_and_delete(
    client: AsyncClient, app: FastAPI, settings: Settings
) -> None:
    await _some_events(app, client)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)


async def test_intact_chain_verifies(client: AsyncClient, app: FastAPI, settings: Settings) -> None:
    await _some_events(app, client)
    code, report = _verify(settings)
    assert code == 0 and report["ok"] is True and report["checked"] == 3


@pytest.mark.parametrize(
    ("tamper", "expect"),
    [
        ("UPDATE audit_log SET outcome = 'ok' WHERE seq = 2", "edited"),
        ("UPDATE audit_log SET actor_ip = '10.0.0.9' WHERE seq = 1", "edited"),
        ("DELETE FROM audit_log WHERE seq = 2", "deleted"),
        (
            "INSERT INTO audit_log (seq, occurred_at, action, outcome, prev_hash, hash) "
            "SELECT 4, now(), 'auth.login', 'ok', hash, repeat('0', 64) FROM audit_log WHERE seq = 3",
            "forged",
        ),
        (
            "UPDATE audit_log SET seq = seq + 1 WHERE seq = 3; "
            "INSERT INTO audit_log (seq, occurred_at, action, outcome, prev_hash, hash) "
            "SELECT 3, now(), 'access.role_granted', 'ok', hash, repeat('a', 64) "
            "FROM audit_log WHERE seq = 2",
            "inserted",
        ),
    ],
    ids=["edited-outcome", "edited-ip", "deleted", "appended-forgery", "inserted-in-the-middle"],
)
async def test_tampering_is_detected(
    client: AsyncClient, app: FastAPI, settings: Settings, tamper: str, expect: str
) -> None:
    await _some_events(app, client)
    _sql(settings, *tamper.split("; "))
    code, report = _verify(settings)
    assert code == 1 and report["ok"] is False
    assert report["findings"], expect


async def test_trigger_disabled_edit_is_still_caught(
    client: AsyncClient, app: FastAPI, settings: Settings
) -> None:
    await _some_events(app, client)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute('UPDATE audit_log SET after = \'{"identifier": "forged"}\' WHERE seq = 1')
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    code, report = _verify(settings)
    assert code == 1
    assert any(f["seq"] == 1 and "hash" in f["problem"] for f in report["findings"])  # type: ignore[attr-defined]


async def test_query_api_filters_and_pages(client: AsyncClient, app: FastAPI) -> None:
    auditor = await signed_in(app, client, roles=("admin",), totp=True)
    await _some_events(app, client)
    r = await client.get(
        "/v1/audit/events",
        headers=auditor.headers,
        params={"action": "auth.login", "outcome": "failed", "limit": 2},
    )
    page = r.json()
    assert r.status_code == 200 and len(page["items"]) == 2 and page["next_cursor"]
    assert page["items"][0]["seq"] > page["items"][1]["seq"]
    r = await client.get(
        "/v1/audit/events",
        headers=auditor.headers,
        params={"action": "auth.login", "outcome": "failed", "limit": 2, "cursor": page["next_cursor"]},
    )
    rest = r.json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    everything = (
        await client.get("/v1/audit/events", headers=auditor.headers, params={"action": "2fa.*"})
    ).json()
    assert {e["action"] for e in everything["items"]} == {"2fa.totp_enrol_started", "2fa.totp_enabled"}
    assert all(e["actor_id"] == str(auditor.user_id) for e in everything["items"])


async def test_export_is_json_lines_that_verify_offline(client: AsyncClient, app: FastAPI) -> None:
    from kirana.api.audit import chain

    auditor = await signed_in(app, client, roles=("admin",), totp=True)
    await _some_events(app, client)
    r = await client.get("/v1/audit/export", headers=auditor.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/jsonl")
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert len(rows) >= 5
    assert chain.verify(rows).ok
