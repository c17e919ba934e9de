"""The `kirana` command line: run the shop locally, serve the API, and manage the database.

Scriptable for the operator's Jobs: exit code 0 on success, 1 when a check or step fails (one
line on stderr), 2 for bad usage (kirana.api.clikit); `--json` prints machine-readable results on
stdout. Commands that need the database or Redis find the shop `kirana run` started when no URL
is configured (kirana.api.localshop). Past 400 lines because it is only the command table: each
command parses, calls one function (`db.lifecycle`, `runner`, `catalog.generate`) and prints.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kirana.api import clikit
from kirana.api.clikit import JsonOpt, VerboseOpt, emit, err, fail, out, settings_or_exit, shop_settings
from kirana.api.settings import Settings

app = typer.Typer(
    help="Kirana: an e-commerce platform for the Indian market. With no URL configured, commands "
    "that need the database or Redis use the shop `kirana run` started (its record is "
    "<data dir>/run.json).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Say on stderr where the database and Redis URLs came from."),
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where `kirana run` keeps its data and run record (KIRANA_DATA_DIR; default .local)."
        ),
    ] = None,
) -> None:
    """Options that apply to every command (read by kirana.api.clikit)."""


db_app = typer.Typer(
    help="Database schema and backups (used by people and the operator's Jobs).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
catalog_app = typer.Typer(help="Catalog data tools (demo and benchmark data).", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


def lifecycle(settings: Settings, as_json: bool) -> Any:
    from kirana.api.db.lifecycle import Lifecycle, LifecycleError, migrations_dir

    try:
        return Lifecycle(
            settings.database_url,
            scripts_path=migrations_dir(settings.migrations_dir),
            pg_bin=settings.pg_bin_dir,
            progress=(lambda _m: None) if as_json else (lambda m: err.print(f"[dim]• {m}[/]")),
        )
    except LifecycleError as exc:
        fail(str(exc))


def guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from kirana.api.db.lifecycle import LifecycleError

    try:
        return fn(*args, **kwargs)
    except LifecycleError as exc:
        fail(str(exc))


@db_app.command("migrate")
def db_migrate(
    to: Annotated[str, typer.Option(help="Target revision.")] = "head",
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Upgrade the schema (holding an advisory lock, so concurrent runs wait and then no-op)."""
    lc = lifecycle(shop_settings("database", verbose=verbose), as_json)
    r = guarded(lc.migrate, to)
    emit(r, as_json, f"schema at {r['to']}" + ("" if r["changed"] else " (no change)"))


@db_app.command("rollback")
def db_rollback(
    steps: Annotated[int | None, typer.Option(help="Roll back this many revisions.")] = None,
    to: Annotated[str | None, typer.Option(help="Roll back to this revision (or 'base').")] = None,
    allow_base: Annotated[
        bool, typer.Option(help="Allow rolling back to base, which drops every table and its data.")
    ] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Downgrade the schema by --steps N or --to REV."""
    lc = lifecycle(shop_settings("database", verbose=verbose), as_json)
    r = guarded(lc.rollback, steps=steps, to=to, allow_base=allow_base)
    emit(r, as_json, f"schema at {r['to'] or 'base'} (was {r['from']})")


@db_app.command("current")
def db_current(as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """Print the database's schema revision."""
    lc = lifecycle(shop_settings("database", verbose=verbose), as_json)
    rev = guarded(lc.current)
    head = guarded(lc.head)
    emit(
        {"current": rev, "head": head, "up_to_date": rev == head},
        as_json,
        f"{rev or 'base'}" + (" (head)" if rev == head else f" (head is {head})"),
    )


@db_app.command("history")
def db_history(as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """List every revision, oldest first, marking which are applied."""
    lc = lifecycle(shop_settings("database", verbose=verbose), as_json)
    rows = guarded(lc.history)
    if as_json:
        emit(rows, True)
        return
    table = Table("revision", "applied", "message")
    for r in rows:
        mark = "current" if r["current"] else ("yes" if r["applied"] else "")
        table.add_row(r["revision"], mark, r["message"].splitlines()[0] if r["message"] else "")
    out.print(table)


@db_app.command("check")
def db_check(
    no_drift: Annotated[
        bool, typer.Option("--no-drift", help="Skip the model/database drift check.")
    ] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Fail on drift between models and migrations, and on operations unsafe in a rolling deploy."""
    lc = lifecycle(shop_settings("database", verbose=verbose), as_json)
    report = guarded(lc.check, drift=not no_drift)
    if as_json:
        emit(report, True)
    else:
        for f in report["unsafe"]:
            err.print(
                f"[red]UNSAFE[/] {f['revision']} [bold]{f['rule']}[/]: {f['why']}\n"
                f"    {f['statement']}\n    fix: {f['fix']}"
            )
        for f in report["waived"]:
            err.print(f"[yellow]waived[/] {f['revision']} {f['rule']}: {f['waived']}")
        for d in report["drift"]:
            err.print(f"[red]DRIFT[/] {d}")
        if report["ok"]:
            out.print("migrations are safe and match the models")
    if not report["ok"]:
        raise typer.Exit(1)


def _archive(location: str) -> Path | str:
    """A local path, or an `s3://bucket/key` location kept as written (a Path would fold its //)."""
    from kirana.api.db.objectstore import is_remote

    return location if is_remote(location) else Path(location)


@db_app.command("backup")
def db_backup(
    out_path: Annotated[
        str | None,
        typer.Option("--out", help="Archive path or s3://bucket/key (a .json manifest goes beside it)."),
    ] = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """pg_dump (custom format) plus a manifest: revision, server version, size, sha256, row counts.

    To an s3:// location the archive is streamed (no local copy), then read back and checked."""
    from kirana.api.db.objectstore import is_remote

    settings = shop_settings("database", verbose=verbose)
    lc = lifecycle(settings, as_json)
    folder = os.environ.get("KIRANA_BACKUP_DIR", "")
    backup_dir: Path | str = folder if is_remote(folder) else settings.resolved_backup_dir
    m = guarded(lc.backup, _archive(out_path) if out_path else None, backup_dir=backup_dir)
    emit(
        m,
        as_json,
        f"backup {m['path']} ({m['size']} bytes, sha256 {m['sha256'][:12]}…, "
        f"revision {m['schema_revision']})",
    )


@db_app.command("list")
def db_list(
    root: Annotated[str, typer.Argument(help="A backup folder or s3://bucket/prefix.")],
    as_json: JsonOpt = False,
) -> None:
    """List the archives under a backup root, newest first per folder (scheduled, pre-upgrade, ...)."""
    from kirana.api.db import archives
    from kirana.api.db.objectstore import ObjectStoreError

    try:
        found = archives.list_archives(_archive(root))
    except ObjectStoreError as exc:
        fail(str(exc))
    if as_json:
        emit([a.as_dict() for a in found], True)
        return
    table = Table("folder", "archive", "bytes", "modified", "manifest")
    for a in found:
        table.add_row(
            a.folder, a.location, str(a.size), a.modified.isoformat(), "yes" if a.complete else "NO"
        )
    out.print(table)


@db_app.command("prune")
def db_prune(
    root: Annotated[str, typer.Argument(help="A backup folder or s3://bucket/prefix.")],
    keep: Annotated[int, typer.Option(min=1, help="Archives kept per folder.")] = 7,
    max_age_days: Annotated[int, typer.Option(min=1, help="Older archives are deleted.")] = 14,
    as_json: JsonOpt = False,
) -> None:
    """Apply a retention to a backup root; the newest archive of each folder is always kept."""
    from kirana.api.db import archives
    from kirana.api.db.objectstore import ObjectStoreError

    try:
        pruned = archives.prune(_archive(root), keep=keep, max_age_days=max_age_days)
    except ObjectStoreError as exc:
        fail(str(exc))
    emit({"pruned": pruned}, as_json, "\n".join(f"pruned {p}" for p in pruned) or "nothing to prune")


@db_app.command("verify")
def db_verify(
    path: Annotated[str, typer.Argument(help="The archive `kirana db backup` wrote (a path or s3://).")],
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Restore an archive into a scratch database and check it; the live database is untouched."""
    lc = lifecycle(shop_settings("database", verbose=verbose), as_json)
    r = guarded(lc.verify, _archive(path))
    if as_json:
        emit(r, True)
    elif r["ok"]:
        out.print(f"{path}: OK ({len(r['tables'])} tables, revision {r['revision']})")
    else:
        for p in r["problems"]:
            err.print(f"[red]mismatch[/] {p}")
    if not r["ok"]:
        raise typer.Exit(1)


@db_app.command("restore")
def db_restore(
    path: Annotated[str, typer.Argument(help="Archive path or s3://bucket/key.")],
    drop_previous: Annotated[bool, typer.Option(help="Drop the replaced database after the swap.")] = False,
    allow_other_database: Annotated[
        bool, typer.Option(help="Restore an archive taken from a differently named database.")
    ] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Restore an archive beside the live database, check it, then swap it in (old data kept)."""
    lc = lifecycle(shop_settings("database", verbose=verbose), as_json)
    r = guarded(
        lc.restore,
        _archive(path),
        keep_previous=not drop_previous,
        allow_other_database=allow_other_database,
    )
    kept = f"; previous data kept as database {r['previous_database']}" if r["previous_database"] else ""
    emit(r, as_json, f"restored {path} into {r['database']} (revision {r['schema_revision']}){kept}")


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision does.")],
    empty: Annotated[bool, typer.Option(help="Start from an empty revision, not from the models.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Create a new migration, autogenerated from the models unless --empty (for developers)."""
    from alembic import command

    settings = shop_settings("database", verbose=verbose)
    lc = lifecycle(settings, False)
    with lc.locked() as conn:
        cfg = lc.config(conn)
        command.revision(cfg, message=message, autogenerate=not empty)


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """Walk the audit log's hash chain; exit 1 if any entry was edited, inserted or deleted."""
    from kirana.api.audit.service import verify_database

    settings = shop_settings("database", verbose=verbose)
    report = verify_database(settings.database_url)
    result = {
        "ok": report.ok,
        "checked": report.checked,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "findings": [{"seq": f.seq, "id": f.id, "problem": f.problem} for f in report.findings],
    }
    if as_json:
        emit(result, True)
    else:
        for f in report.findings:
            err.print(f"[red]TAMPERED[/] {f}", highlight=False)
        if report.ok:
            out.print(
                f"audit log intact: {report.checked} entries, head seq {report.head_seq} "
                f"hash {report.head_hash}",
                highlight=False,
            )
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    action: Annotated[str | None, typer.Option(help="Only this action (or prefix like `auth.*`).")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Print the audit log as JSON lines, oldest first (hashes included for offline checks)."""
    import asyncio

    from kirana.api.audit import service as audit
    from kirana.api.db.engine import Database

    settings = shop_settings("database", verbose=verbose)

    async def dump() -> None:
        db = Database(settings.database_url, pool_size=1, max_overflow=0)
        try:
            async for row in audit.stream(db, filters=audit.Filters(action=action)):
                sys.stdout.write(json.dumps(row, default=str, separators=(",", ":")) + "\n")
        finally:
            await db.dispose()

    asyncio.run(dump())


@catalog_app.command("generate")
def catalog_generate(
    count: Annotated[
        int, typer.Option("--count", min=1, max=5_000_000, help="Products to create.")
    ] = 100_000,
    seed: Annotated[int | None, typer.Option(help="Random seed (repeatable data).")] = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Bulk-create realistic products with variants (PostgreSQL COPY; 100k in seconds)."""
    import time

    from sqlalchemy import create_engine

    from kirana.api.catalog import generate
    from kirana.api.db.urls import sync_url

    settings = shop_settings("database", verbose=verbose)
    engine = create_engine(sync_url(settings.database_url))
    t0 = time.monotonic()
    try:
        with engine.begin() as conn:
            made = generate.generate(conn, count, seed=seed)
    except Exception as exc:  # one readable line, not a traceback
        fail(f"could not generate products: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()
    elapsed = time.monotonic() - t0
    emit(
        {"products": made, "seconds": round(elapsed, 2)},
        as_json,
        f"created {made} products in {elapsed:.1f}s ({made / max(elapsed, 1e-9):,.0f}/s)",
    )


from kirana.api.payments.cli import dev_app, payments_app  # noqa: E402 - beside the other groups

app.add_typer(payments_app, name="payments")
app.add_typer(dev_app, name="dev")

from kirana.api.loyalty.cli import achievements_app, leaderboards_app, loyalty_app  # noqa: E402

app.add_typer(loyalty_app, name="loyalty")
app.add_typer(achievements_app, name="achievements")
app.add_typer(leaderboards_app, name="leaderboards")

accounts_app = typer.Typer(help="Accounts that must exist before anyone can sign in.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")


@accounts_app.command("create-owner")
def accounts_create_owner(
    email: Annotated[str, typer.Option(help="The owner's email (their sign-in).")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    phone: Annotated[str | None, typer.Option(help="Indian mobile number, for SMS 2FA.")] = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Create the shop's first owner; refused once an owner exists.

    The password comes from KIRANA_OWNER_PASSWORD or is asked for (hidden, twice). The owner must
    enrol TOTP before using admin permissions.
    """
    import asyncio

    from kirana.api.accounts import bootstrap
    from kirana.api.db.engine import Database
    from kirana.api.errors import KiranaError

    settings = shop_settings("database", verbose=verbose)
    password = os.environ.get("KIRANA_OWNER_PASSWORD") or typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True, err=True
    )

    async def create() -> str:
        db = Database(settings.database_url, pool_size=1, max_overflow=0)
        try:
            return str(
                await bootstrap.create_owner(db, email=email, password=password, name=name, phone=phone)
            )
        finally:
            await db.dispose()

    try:
        user_id = asyncio.run(create())
    except KiranaError as exc:
        fail(exc.detail)
    emit({"user_id": user_id, "email": email}, as_json, f"owner {email} created ({user_id}); enrol TOTP next")


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (KIRANA_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (KIRANA_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (KIRANA_WORKERS).")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Port of /metrics, apart from the API (KIRANA_METRICS_PORT; 0: none).")
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Serve the API with uvicorn (what the container runs); without URLs, on `kirana run`'s servers."""
    from kirana.api import server

    settings = shop_settings("database", "redis", verbose=verbose)
    if problem := settings.payments_problem():
        fail(problem, 2)
    server.serve(settings, host=host, port=port, workers=workers, metrics_port=metrics_port)


@app.command("run")
def run(
    port: Annotated[int | None, typer.Option(help="API port (default 8000).")] = None,
    workers: Annotated[int, typer.Option(help="API worker processes.")] = 1,
    seed: Annotated[bool, typer.Option(help="Seed demo data on first start.")] = True,
) -> None:
    """The whole shop on this machine: embedded PostgreSQL and Redis, migrations, API and worker."""
    from kirana.api import runner

    settings = settings_or_exit()
    code = runner.run(settings, port=port, workers=workers, seed=seed)
    raise typer.Exit(code)


@app.command("version")
def version() -> None:
    """Print the version."""
    from kirana.api import __version__

    out.print(__version__)


from kirana.api import localcli  # noqa: E402 - beside the other commands

app.command("status")(localcli.status)
app.command("completion")(localcli.completion)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if "_KIRANA_COMPLETE" in os.environ:  # a shell asking for completions (`kirana completion`)
        from typer._completion_classes import completion_init

        completion_init()
    raise SystemExit(clikit.run(typer.main.get_command(app)))
