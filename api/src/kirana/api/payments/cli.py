"""`kirana payments ...` and `kirana dev pay`: ledger checks, reconciliation, paying in development.

Added to the `kirana` command by `kirana.api.cli`. With no URL or keys configured, they use the
database and the fake Razorpay of the shop `kirana run` started (kirana.api.localshop).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import date
from typing import Annotated, Any

import httpx
import typer
from sqlalchemy import select

from kirana.api.clikit import JsonOpt, VerboseOpt, shop_settings
from kirana.api.settings import Settings

payments_app = typer.Typer(help="Payments: the ledger and Razorpay.", no_args_is_help=True)
dev_app = typer.Typer(help="Development helpers (the fake Razorpay).", no_args_is_help=True)


def _settings(verbose: bool) -> Settings:
    return shop_settings("database", "razorpay", verbose=verbose)


def _report(rows: list[dict[str, Any]], as_json: bool, ok: str) -> None:
    if as_json:
        typer.echo(json.dumps({"ok": not rows, "differences": rows}, indent=2))
    elif not rows:
        typer.echo(ok)
    else:
        for row in rows:
            typer.echo(" ".join(f"{k}={v}" for k, v in row.items()))
    if rows:
        raise typer.Exit(1)


@payments_app.command("verify-ledger")
def verify_ledger(as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """Check that every order's ledger sums match its status; exit 1 on any difference."""
    from kirana.api.db.engine import Database
    from kirana.api.payments import ledger_check

    settings = _settings(verbose)

    async def check() -> list[dict[str, Any]]:
        db = Database(settings.database_url, pool_size=1, max_overflow=0)
        try:
            async with db.session() as session:
                return await ledger_check.verify_ledger(session)
        finally:
            await db.dispose()

    _report(asyncio.run(check()), as_json, "ledger balances: every order's status matches its money")


@payments_app.command("reconcile")
def reconcile(
    day: Annotated[str, typer.Option("--date", help="The day (UTC), YYYY-MM-DD.")],
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Every difference between the shop's ledger and Razorpay's payments and refunds of a day."""
    from kirana.api.db.engine import Database
    from kirana.api.payments import gateway as gw
    from kirana.api.payments import ledger_check

    try:
        when = date.fromisoformat(day)
    except ValueError:
        typer.echo("error: --date must be YYYY-MM-DD", err=True)
        raise typer.Exit(2) from None
    settings = _settings(verbose)

    async def check() -> list[dict[str, Any]]:
        db = Database(settings.database_url, pool_size=1, max_overflow=0)
        try:
            async with db.session() as session:
                return await ledger_check.reconcile_day(
                    session, gateway=gw.Gateway(gw.config_from(settings)), day=when
                )
        finally:
            await db.dispose()

    try:
        rows = asyncio.run(check())
    except gw.GatewayUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    _report(rows, as_json, f"{when}: the ledger matches Razorpay")


@dev_app.command("pay")
def dev_pay(
    order_id: Annotated[uuid.UUID, typer.Argument(help="The order to pay (its id).")],
    method: Annotated[str, typer.Option(help="upi or card.")] = "upi",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the shop.")] = 30.0,
    verbose: VerboseOpt = False,
) -> None:
    """Pay an order through the fake Razorpay as the customer's app would (Checkout, signature,
    signed webhooks) and return once the shop has it paid."""
    from kirana.api.db.engine import Database
    from kirana.api.orders.models import Order
    from kirana.api.payments import gateway as gw
    from kirana.api.payments import service as payments

    if method not in ("upi", "card"):
        typer.echo("error: --method is upi or card", err=True)
        raise typer.Exit(2)
    settings = _settings(verbose)
    if "razorpay.com" in settings.razorpay_base_url:
        typer.echo(
            "error: `dev pay` pays only through the fake Razorpay (no keys set, `kirana run`)", err=True
        )
        raise typer.Exit(2)

    async def go() -> str:
        db = Database(settings.database_url, pool_size=1, max_overflow=0)
        gateway = gw.Gateway(gw.config_from(settings))
        try:
            async with db.session() as session:
                order = await session.get(Order, order_id)
                if order is None:
                    raise typer.BadParameter("no such order")
                info = await payments.start_checkout(
                    session,
                    gateway=gateway,
                    order_id=order.id,
                    user_id=order.user_id,
                    methods=("upi", "card"),
                    retry_after_s=settings.payments_retry_after_s,
                )
            async with httpx.AsyncClient(base_url=settings.razorpay_base_url, timeout=10) as http:
                r = await http.post("/_dev/pay", json={"order_id": info.razorpay_order_id, "method": method})
                r.raise_for_status()
                answer = r.json()
            if not gateway.checkout_signature_ok(
                order_id=answer["razorpay_order_id"],
                payment_id=answer["razorpay_payment_id"],
                signature=answer["razorpay_signature"],
            ):
                raise RuntimeError("the fake's Checkout signature did not verify")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                async with db.session() as session:
                    status = await session.scalar(select(Order.status).where(Order.id == order_id))
                if status == "paid":
                    return str(answer["razorpay_payment_id"])
                await asyncio.sleep(0.3)
            raise TimeoutError("the shop did not mark the order paid in time (is the worker running?)")
        finally:
            await db.dispose()

    try:
        payment_id = asyncio.run(go())
    except (TimeoutError, RuntimeError, gw.GatewayUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"order {order_id} paid ({payment_id})")
