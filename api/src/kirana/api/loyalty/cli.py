"""`kirana loyalty ...`, `kirana achievements ...`, `kirana leaderboards ...`: checks and rebuilds.

Added to the `kirana` command by `kirana.api.cli`. `loyalty verify` compares every account with
its ledger (exit 1 on a difference), `loyalty rebuild` sets accounts from the ledger, `loyalty
expire` runs the expiry job once, `achievements backfill RULE` evaluates one rule over history,
`leaderboards rebuild` recomputes the Redis sets from the ledger and `leaderboards check`
compares them (exit 1 on a difference).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from kirana.api.clikit import VerboseOpt, shop_settings
from kirana.api.settings import Settings

loyalty_app = typer.Typer(
    help="Loyalty points: the ledger and the accounts it sums to.", no_args_is_help=True
)
achievements_app = typer.Typer(help="Achievements: backfill a rule over history.", no_args_is_help=True)
leaderboards_app = typer.Typer(help="Leaderboards: rebuild and check the Redis sets.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
T = TypeVar("T")


def _settings(redis: bool = False, verbose: bool = False) -> Settings:
    """Configured URLs, else the running `kirana run`'s (exit 2 with one line when neither)."""
    return shop_settings("database", *(("redis",) if redis else ()), verbose=verbose)


def _run(settings: Settings, work: Callable[[Any, Any], Awaitable[T]], *, redis: bool = False) -> T:
    from kirana.api import redis as kirana_redis
    from kirana.api.db.engine import Database

    async def go() -> T:
        db = Database(settings.database_url, pool_size=2, max_overflow=0)
        client = kirana_redis.connect(settings.redis_url) if redis else None
        try:
            return await work(db, client)
        finally:
            if client is not None:
                await client.aclose()
            await db.dispose()

    return asyncio.run(go())


def _report(rows: list[dict[str, Any]], as_json: bool, ok: str) -> None:
    if as_json:
        typer.echo(json.dumps({"ok": not rows, "differences": rows}, indent=2, default=str))
    elif not rows:
        typer.echo(ok)
    else:
        for row in rows:
            typer.echo(" ".join(f"{k}={v}" for k, v in row.items()))
    if rows:
        raise typer.Exit(1)


@loyalty_app.command("verify")
def verify(as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """Check every account against its ledger; exit 1 on any difference."""
    from kirana.api.loyalty import service

    async def work(db: Any, _redis: Any) -> list[dict[str, Any]]:
        async with db.session() as session:
            return await service.verify(session)

    _report(_run(_settings(verbose=verbose), work), as_json, "every loyalty account matches its ledger")


@loyalty_app.command("rebuild")
def rebuild(as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """Set every account's balance, debt and pending points from the ledger."""
    from kirana.api.loyalty import service

    async def work(db: Any, _redis: Any) -> int:
        async with db.session() as session:
            return await service.rebuild(session)

    changed = _run(_settings(verbose=verbose), work)
    typer.echo(
        json.dumps({"changed": changed}) if as_json else f"{changed} accounts rewritten from the ledger"
    )


@loyalty_app.command("expire")
def expire(as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """Expire earnings older than KIRANA_LOYALTY_EXPIRY_MONTHS now (the worker does it hourly)."""
    from kirana.api.loyalty import scheduled

    settings = _settings(verbose=verbose)

    async def work(db: Any, _redis: Any) -> int:
        return await scheduled.expire_points(db, months=settings.loyalty.expiry_months)

    points = _run(settings, work)
    typer.echo(json.dumps({"expired_points": points}) if as_json else f"{points} points expired")


@achievements_app.command("backfill")
def backfill(
    rule: Annotated[str, typer.Argument(help="The rule's key, e.g. orders_5")],
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Evaluate one rule over every customer's history (unlock times from the history)."""
    from kirana.api.loyalty import achievements, unlocking

    found = achievements.BY_KEY.get(rule)
    if found is None:
        typer.echo(f"error: no rule {rule!r}; known: {', '.join(sorted(achievements.BY_KEY))}", err=True)
        raise typer.Exit(2)

    async def work(db: Any, _redis: Any) -> tuple[int, int]:
        async with db.session() as session:
            return await unlocking.backfill(session, rule=found)

    customers, unlocked = _run(_settings(verbose=verbose), work)
    out = {"rule": rule, "customers": customers, "unlocked": unlocked}
    typer.echo(
        json.dumps(out) if as_json else f"{rule}: {customers} customers evaluated, {unlocked} unlocked"
    )


@leaderboards_app.command("rebuild")
def lb_rebuild(as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """Recompute every leaderboard set from the ledger and swap it in."""
    from kirana.api.loyalty import leaderboards

    async def work(db: Any, redis: Any) -> dict[str, int]:
        async with db.session() as session:
            return await leaderboards.rebuild(session, redis)

    out = _run(_settings(redis=True, verbose=verbose), work, redis=True)
    typer.echo(
        json.dumps(out) if as_json else f"{out['sets']} sets rebuilt, {out['removed']} stale sets removed"
    )


@leaderboards_app.command("check")
def lb_check(as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """Compare the live sets with the ledger; exit 1 on any difference."""
    from kirana.api.loyalty import leaderboards

    async def work(db: Any, redis: Any) -> list[dict[str, Any]]:
        async with db.session() as session:
            return await leaderboards.check(session, redis)

    _report(
        _run(_settings(redis=True, verbose=verbose), work, redis=True),
        as_json,
        "every leaderboard matches the ledger",
    )
