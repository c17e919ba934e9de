"""Checks over the money ledger, for `kirana payments verify-ledger` and `reconcile --date`.

`verify_ledger` compares every order's ledger sums with its status; `reconcile_day` compares
the ledger with Razorpay's own payments and refunds for one day. Both only read and report.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.orders.models import Order
from kirana.api.payments.gateway import Gateway
from kirana.api.payments.models import CashOnDelivery, LedgerEntry, Payment
from kirana.api.payments.service import PAID_STATUSES


async def verify_ledger(session: AsyncSession) -> list[dict[str, Any]]:
    """Every order whose ledger does not explain its status: a paid order must have net
    receipts equal to what is due (its total less loyalty points); an unpaid one none; refunds
    never above what came in."""
    captured = func.coalesce(
        func.sum(
            case((LedgerEntry.kind.in_(["captured", "cod_collected"]), LedgerEntry.amount_paise), else_=0)
        ),
        0,
    )
    refunded = func.coalesce(
        func.sum(case((LedgerEntry.kind == "refunded", LedgerEntry.amount_paise), else_=0)), 0
    )
    sums = (
        select(LedgerEntry.order_id, captured.label("captured"), refunded.label("refunded"))
        .where(LedgerEntry.order_id.is_not(None))
        .group_by(LedgerEntry.order_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            Order.id,
            Order.number,
            Order.status,
            (Order.total_paise - Order.discount_paise).label("due"),
            sums.c.captured,
            sums.c.refunded,
            CashOnDelivery.collected_at,
            CashOnDelivery.order_id.is_not(None),
        )
        .outerjoin(sums, sums.c.order_id == Order.id)
        .outerjoin(CashOnDelivery, CashOnDelivery.order_id == Order.id)
    )
    problems: list[dict[str, Any]] = []
    for oid, number, status, due, cap, ref, collected_at, is_cod in rows:
        cap, ref = int(cap or 0), int(ref or 0)
        net = cap - ref
        issue = None
        if ref > cap:
            issue = "refunded more than was received"
        elif is_cod and collected_at is None:
            # Cash on delivery: nothing is received before the door, the whole total after.
            if status == "delivered":
                issue = "delivered cash on delivery, but no cash is recorded"
            elif net:
                issue = f"cash on delivery not collected, but the ledger nets {net} paise"
        elif status in PAID_STATUSES and net != due:
            issue = f"{status} but the ledger nets {net} of {due} paise due"
        elif status == "pending_payment" and net:
            issue = f"pending but the ledger nets {net} paise"
        elif status == "refunded" and net:
            issue = f"refunded but {net} paise are still kept"
        if issue:
            problems.append(
                {
                    "order_id": str(oid),
                    "number": number,
                    "status": status,
                    "due_paise": due,
                    "captured_paise": cap,
                    "refunded_paise": ref,
                    "problem": issue,
                }
            )
    return problems


def day_window(day: date) -> tuple[int, int]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return int(start.timestamp()), int((start + timedelta(days=1)).timestamp()) - 1


async def reconcile_day(session: AsyncSession, *, gateway: Gateway, day: date) -> list[dict[str, Any]]:
    """Every difference between the ledger and Razorpay for the payments and refunds of `day`."""
    since, until = day_window(day)
    theirs = await gateway.payments_between(since, until)
    refunds = await gateway.refunds_between(since, until)
    ours = {
        ref: amount
        for ref, amount in (
            await session.execute(
                select(LedgerEntry.reference, LedgerEntry.amount_paise).where(
                    LedgerEntry.kind.in_(["captured", "refunded"])
                )
            )
        ).all()
    }
    known = set((await session.scalars(select(Payment.razorpay_payment_id))).all())
    diffs: list[dict[str, Any]] = []
    for p in theirs:
        ref = f"captured:{p['id']}"
        was_captured = p["status"] in ("captured", "refunded")
        if was_captured and ref not in ours:
            diffs.append(
                {
                    "payment": p["id"],
                    "order": p.get("order_id"),
                    "difference": "captured at Razorpay, not in the ledger",
                    "amount_paise": p["amount"],
                }
            )
        elif was_captured and ours[ref] != p["amount"]:
            diffs.append(
                {
                    "payment": p["id"],
                    "difference": "amounts differ",
                    "razorpay": p["amount"],
                    "ledger": ours[ref],
                }
            )
        elif not was_captured and ref in ours:
            diffs.append(
                {"payment": p["id"], "difference": f"in the ledger as captured, Razorpay says {p['status']}"}
            )
        elif p["status"] == "authorized" and p["id"] not in known:
            diffs.append({"payment": p["id"], "difference": "authorized at Razorpay, unknown to the shop"})
    for r in refunds:
        if r.get("status") == "processed" and f"refund:{r['id']}" not in ours:
            diffs.append(
                {
                    "refund": r["id"],
                    "payment": r["payment_id"],
                    "difference": "refund not in the ledger",
                    "amount_paise": r["amount"],
                }
            )
    their_ids = {p["id"] for p in theirs}
    for pid, amount in (
        await session.execute(
            select(LedgerEntry.razorpay_payment_id, LedgerEntry.amount_paise)
            .where(LedgerEntry.kind == "captured")
            .where(LedgerEntry.created_at >= datetime.fromtimestamp(since, UTC))
            .where(LedgerEntry.created_at <= datetime.fromtimestamp(until, UTC))
        )
    ).all():
        if pid and pid not in their_ids:
            diffs.append(
                {
                    "payment": pid,
                    "difference": "in the ledger, not among Razorpay's payments of the day",
                    "amount_paise": amount,
                }
            )
    return diffs
