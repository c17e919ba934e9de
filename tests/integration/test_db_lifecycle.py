"""`kirana db` on real PostgreSQL: migrations both ways, the safety check, backups and restores."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from kirana.api.db.lifecycle import Lifecycle, LifecycleError, migrations_dir

SOURCE_MIGRATIONS = migrations_dir()


def _rows(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, topic, key, payload FROM outbox_events ORDER BY id").fetchall()


def _add_rows(url: str, n: int) -> None:
    with psycopg.connect(url) as conn:
        for i in range(n):
            conn.execute(
                "INSERT INTO outbox_events (topic, key, payload) VALUES (%s, %s, %s)",
                ("order.placed", f"order-{i}", json.dumps({"n": i, "note": "ಕನ್ನಡ ✓"})),
            )


def test_every_revision_upgrades_downgrades_and_upgrades_again(empty_database_url: str) -> None:
    lc = Lifecycle(empty_database_url)
    revisions = [r["revision"] for r in lc.history()]
    assert revisions, "there must be migrations"
    for rev in revisions:
        lc.migrate(rev)
        assert lc.current() == rev
    for _ in revisions[:-1]:
        lc.rollback(steps=1)
    with pytest.raises(LifecycleError, match="drops every table"):
        lc.rollback(steps=1)  # the last step reaches base: refused without allow_base
    assert lc.current() == revisions[0]
    lc.rollback(steps=1, allow_base=True)
    assert lc.current() is None
    result = lc.migrate()
    assert result["to"] == lc.head()
    assert lc.current() == lc.head()
    assert lc.migrate()["changed"] is False


def test_history_marks_applied_revisions(database_url: str) -> None:
    rows = Lifecycle(database_url).history()
    assert all(r["applied"] for r in rows)
    assert rows[-1]["current"] and rows[-1]["head"]


def test_rollback_rejects_impossible_requests(database_url: str) -> None:
    lc = Lifecycle(database_url)
    with pytest.raises(LifecycleError, match="exactly one"):
        lc.rollback()
    with pytest.raises(LifecycleError, match="only"):
        lc.rollback(steps=999)
    with pytest.raises(LifecycleError, match="unknown revision"):
        lc.rollback(to="deadbeef")


def test_rollback_to_base_is_refused_unless_explicitly_allowed(database_url: str) -> None:
    _add_rows(database_url, 3)
    lc = Lifecycle(database_url)
    head = lc.head()
    with pytest.raises(LifecycleError, match="drops every table"):
        lc.rollback(to="base")
    depth = len(lc.history())
    with pytest.raises(LifecycleError, match="drops every table"):
        lc.rollback(steps=depth)
    assert lc.current() == head and len(_rows(database_url)) == 3  # nothing was touched
    assert lc.rollback(to="base", allow_base=True)["to"] is None
    assert lc.current() is None


def test_concurrent_migrations_take_turns(empty_database_url: str) -> None:
    results: list[dict[str, object]] = []
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            results.append(Lifecycle(empty_database_url).migrate())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(1 for r in results if r["changed"]) == 1
    assert Lifecycle(empty_database_url).current() == Lifecycle(empty_database_url).head()


def test_check_passes_for_the_shipped_migrations(database_url: str) -> None:
    report = Lifecycle(database_url).check()
    assert report["ok"], report
    assert report["drift"] == []


def _scripts_with(tmp_path: Path, body: str, waivers: str = "{}") -> Path:
    scripts = tmp_path / "migrations"
    shutil.copytree(SOURCE_MIGRATIONS, scripts)
    head = Lifecycle("postgresql://x@localhost/x", scripts_path=scripts).head()
    (scripts / "versions" / "2099_01_01_ffff_unsafe.py").write_text(
        f'''"""unsafe change"""
import sqlalchemy as sa
from alembic import op

revision = "ffff0000unsafe"
down_revision = "{head}"
branch_labels = None
depends_on = None
waivers = {waivers}


def upgrade() -> None:
{body}


def downgrade() -> None:
    pass
'''
    )
    return scripts


def test_check_names_unsafe_operations(database_url: str, tmp_path: Path) -> None:
    scripts = _scripts_with(
        tmp_path,
        "    op.add_column('outbox_events', sa.Column('tenant', sa.Text(), nullable=False))\n"
        "    op.create_index('ix_outbox_events_key', 'outbox_events', ['key'])\n"
        "    op.drop_column('outbox_events', 'published_at')\n",
    )
    report = Lifecycle(database_url, scripts_path=scripts).check(drift=False)
    assert not report["ok"]
    assert {f["rule"] for f in report["unsafe"]} == {
        "not-null-column-without-default",
        "index-not-concurrent",
        "drop-column",
    }
    assert all(f["revision"] == "ffff0000unsafe" for f in report["unsafe"])


def test_check_accepts_an_explicit_waiver_with_a_reason(database_url: str, tmp_path: Path) -> None:
    scripts = _scripts_with(
        tmp_path,
        "    op.drop_column('outbox_events', 'published_at')\n",
        waivers='{"drop-column": "unused since release 0.3"}',
    )
    report = Lifecycle(database_url, scripts_path=scripts).check(drift=False)
    assert report["ok"]
    assert report["waived"][0]["waived"] == "unused since release 0.3"


def test_check_detects_drift_between_models_and_schema(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("ALTER TABLE outbox_events ADD COLUMN stray text")
    report = Lifecycle(database_url).check()
    assert not report["ok"]
    assert any("stray" in d for d in report["drift"])


def test_backup_then_restore_gives_identical_data(database_url: str, tmp_path: Path) -> None:
    _add_rows(database_url, 25)
    before = _rows(database_url)
    lc = Lifecycle(database_url)
    manifest = lc.backup(tmp_path / "b.dump")
    assert manifest["schema_revision"] == lc.head()
    assert manifest["tables"]["public.outbox_events"] == 25
    assert len(manifest["sha256"]) == 64 and manifest["size"] > 0
    assert lc.verify(tmp_path / "b.dump")["ok"]

    _add_rows(database_url, 5)  # changes after the backup are undone by the restore
    result = lc.restore(tmp_path / "b.dump")
    assert _rows(database_url) == before
    previous = result["previous_database"]
    assert previous
    prev_url = database_url.rsplit("/", 1)[0] + "/" + previous
    assert len(_rows(prev_url)) == 30  # the replaced data survives under its new name
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{previous}"')


def test_truncated_archive_is_refused_and_live_data_untouched(database_url: str, tmp_path: Path) -> None:
    _add_rows(database_url, 10)
    lc = Lifecycle(database_url)
    lc.backup(tmp_path / "good.dump")
    before = _rows(database_url)
    data = (tmp_path / "good.dump").read_bytes()
    bad = tmp_path / "bad.dump"
    bad.write_bytes(data[: len(data) // 2])
    shutil.copy(tmp_path / "good.dump.json", tmp_path / "bad.dump.json")
    with pytest.raises(LifecycleError, match="corrupt"):
        lc.restore(bad)
    with pytest.raises(LifecycleError, match="corrupt"):
        lc.verify(bad)
    assert _rows(database_url) == before


def test_truncated_archive_with_matching_manifest_is_refused(database_url: str, tmp_path: Path) -> None:
    """Even a manifest rewritten to match cannot smuggle in a broken archive."""
    _add_rows(database_url, 10)
    lc = Lifecycle(database_url)
    lc.backup(tmp_path / "good.dump")
    before = _rows(database_url)
    data = (tmp_path / "good.dump").read_bytes()
    bad = tmp_path / "bad.dump"
    bad.write_bytes(data[: len(data) - 200])
    manifest = json.loads((tmp_path / "good.dump.json").read_text())
    import hashlib

    manifest |= {"size": bad.stat().st_size, "sha256": hashlib.sha256(bad.read_bytes()).hexdigest()}
    (tmp_path / "bad.dump.json").write_text(json.dumps(manifest))
    with pytest.raises(LifecycleError):
        lc.restore(bad)
    assert _rows(database_url) == before


def test_archive_from_an_unknown_revision_is_refused(database_url: str, tmp_path: Path) -> None:
    lc = Lifecycle(database_url)
    lc.backup(tmp_path / "b.dump")
    manifest = json.loads((tmp_path / "b.dump.json").read_text())
    manifest["schema_revision"] = "abcdef999999"
    (tmp_path / "b.dump.json").write_text(json.dumps(manifest))
    with pytest.raises(LifecycleError, match="does not know"):
        lc.restore(tmp_path / "b.dump")


def test_archive_without_manifest_is_refused(database_url: str, tmp_path: Path) -> None:
    lc = Lifecycle(database_url)
    lc.backup(tmp_path / "b.dump")
    (tmp_path / "b.dump.json").unlink()
    with pytest.raises(LifecycleError, match="no manifest"):
        lc.verify(tmp_path / "b.dump")


def _admin_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def _drop(url: str, name: str) -> None:
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_archive_of_another_database_is_refused_unless_allowed(
    database_url: str, template_database: str, tmp_path: Path
) -> None:
    _add_rows(database_url, 4)
    Lifecycle(database_url).backup(tmp_path / "other-shop.dump")
    other = database_url.rsplit("/", 1)[1] + "_b"
    other_url = database_url.rsplit("/", 1)[0] + "/" + other
    with psycopg.connect(_admin_url(database_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{other}" TEMPLATE "{template_database}"')
    try:
        _add_rows(other_url, 1)
        lc = Lifecycle(other_url)
        with pytest.raises(LifecycleError, match="not of " + other):
            lc.restore(tmp_path / "other-shop.dump")
        assert len(_rows(other_url)) == 1  # untouched
        result = lc.restore(tmp_path / "other-shop.dump", allow_other_database=True, keep_previous=False)
        assert result["database"] == other and len(_rows(other_url)) == 4
    finally:
        _drop(database_url, other)


def test_restore_terminates_an_idle_connection_to_the_live_database(
    database_url: str, tmp_path: Path
) -> None:
    _add_rows(database_url, 6)
    lc = Lifecycle(database_url)
    lc.backup(tmp_path / "b.dump")
    before = _rows(database_url)
    _add_rows(database_url, 2)
    idle = psycopg.connect(database_url)
    idle.execute("SELECT 1").fetchone()
    idle.commit()  # connected, idle, holding the live database open
    try:
        result = lc.restore(tmp_path / "b.dump", keep_previous=False)
        assert _rows(database_url) == before
        assert result["previous_database"] is None
        with pytest.raises(psycopg.OperationalError):
            idle.execute("SELECT 1")  # it was terminated by the swap
    finally:
        idle.close()


def test_a_failed_swap_puts_the_live_database_back(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the staged copy cannot take the live name, the old database gets it back and stays usable."""
    _add_rows(database_url, 3)
    lc = Lifecycle(database_url)
    lc.backup(tmp_path / "b.dump")
    _add_rows(database_url, 2)
    before = _rows(database_url)
    staged_holders: list[psycopg.Connection[tuple[object, ...]]] = []
    restore_into = lc._restore_into

    def restore_then_hold(path: Path, manifest: dict[str, object], database: str) -> dict[str, object]:
        result = restore_into(path, manifest, database)
        # A stray session on the staged copy makes its RENAME fail once the live one is moved away.
        staged_holders.append(psycopg.connect(database_url.rsplit("/", 1)[0] + "/" + database))
        return result

    monkeypatch.setattr(lc, "_restore_into", restore_then_hold)
    try:
        with pytest.raises(LifecycleError, match="swap failed"):
            lc.restore(tmp_path / "b.dump")
    finally:
        for conn in staged_holders:
            conn.close()
    assert _rows(database_url) == before  # the live name exists, accepts connections, data unchanged
    with psycopg.connect(_admin_url(database_url), autocommit=True) as admin:
        left = admin.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
            (database_url.rsplit("/", 1)[1] + "__",),
        ).fetchall()
    for (name,) in left:
        _drop(database_url, name)
