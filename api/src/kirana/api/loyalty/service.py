"""The points ledger and the operations customers and staff make on it.

Every points movement goes through `post`: one ledger row whose `source` is unique (a replay
writes nothing and reports so), and the account row updated in the same transaction, so the
account is always the sum of its ledger. Debits a customer or staff chooses (redeem, a negative
adjustment) and expiry are conditional on the balance covering them: concurrent debits queue
on the account's row and each sees the balance the previous one left, and a CHECK keeps the
balance at or above zero whatever the code does. A reversal (refund) is never refused: what the
balance cannot cover becomes `debt`, which later earnings pay first.

Called by the loyalty router, `loyalty.awards` (order events) and the expiry job. No HTTP, no commit.

Slightly over 400 lines; verify and rebuild would be the part to move out next.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api import cursors, inputs
from kirana.api.access.principal import Principal
from kirana.api.audit import service as audit
from kirana.api.errors import NotFound
from kirana.api.loyalty import rules
from kirana.api.loyalty import schemas as s
from kirana.api.loyalty.errors import InsufficientPoints, RedemptionClosed, RedemptionTooLarge
from kirana.api.loyalty.models import Account, LedgerEntry, Redemption
from kirana.api.orders import service as orders
from kirana.api.orders.models import Order
from kirana.api.payments.models import Checkout
from kirana.api.settings import LoyaltySettings

DEBITS_NEEDING_BALANCE = frozenset({"redeem", "expire"})

_APPLY_NET = text(
    "UPDATE loyalty_accounts SET balance = GREATEST(balance - debt + :d, 0), "
    "debt = GREATEST(debt - balance - :d, 0), updated_at = now() "
    "WHERE user_id = :u RETURNING balance, debt"
)
_APPLY_COVERED = text(
    "UPDATE loyalty_accounts SET balance = balance + :d, updated_at = now() "
    "WHERE user_id = :u AND balance + :d >= 0 RETURNING balance, debt"
)


async def ensure_account(session: AsyncSession, *, user_id: uuid.UUID) -> None:
    """Create the customer's account row if it is not there yet (concurrent callers are fine)."""
    await session.execute(insert(Account).values(user_id=user_id).on_conflict_do_nothing())


async def post(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    kind: str,
    points: int,
    source: str,
    order_id: uuid.UUID | None = None,
    lot_id: int | None = None,
    store_code: str | None = None,
    city: str | None = None,
    board_at: datetime | None = None,
    reason: str | None = None,
    actor_id: uuid.UUID | None = None,
) -> int | None:
    """Append one entry and apply it to the account; its id, or None when `source` was posted
    before (nothing changes). InsufficientPoints when a debit that needs the balance exceeds it."""
    await ensure_account(session, user_id=user_id)
    entry_id = await session.scalar(
        insert(LedgerEntry)
        .values(
            user_id=user_id,
            kind=kind,
            points=points,
            source=source,
            order_id=order_id,
            lot_id=lot_id,
            store_code=store_code,
            city=city,
            board_at=board_at,
            reason=reason,
            actor_id=actor_id,
        )
        .on_conflict_do_nothing(index_elements=["source"])
        .returning(LedgerEntry.id)
    )
    if entry_id is None:
        return None
    covered = kind in DEBITS_NEEDING_BALANCE or (kind == "adjust" and points < 0)
    row = (
        await session.execute(_APPLY_COVERED if covered else _APPLY_NET, {"d": points, "u": user_id})
    ).first()
    if row is None:
        have = await session.scalar(select(Account.balance).where(Account.user_id == user_id))
        raise InsufficientPoints(
            f"{-points} points asked, {have or 0} available",
            extra={"balance": int(have or 0), "requested": -points},
        )
    return int(entry_id)


async def account(session: AsyncSession, *, user_id: uuid.UUID) -> Account:
    """The customer's account (created empty on first sight)."""
    await ensure_account(session, user_id=user_id)
    found = await session.get(Account, user_id, populate_existing=True)
    assert found is not None
    return found


async def balance(session: AsyncSession, *, user_id: uuid.UUID, settings: LoyaltySettings) -> s.BalanceRead:
    """Balance, debt, pending points and tier as the customer sees them."""
    acct = await account(session, user_id=user_id)
    tier = rules.tier_named(acct.tier)
    upcoming = rules.next_tier(acct.spend_12m_paise)
    return s.BalanceRead(
        balance=acct.balance,
        debt=acct.debt,
        pending=acct.pending,
        tier=tier.name,
        multiplier_percent=tier.multiplier_percent,
        spend_12m_paise=acct.spend_12m_paise,
        next_tier=upcoming.name if upcoming else None,
        next_tier_spend_paise=upcoming.min_spend_paise if upcoming else None,
        point_value_paise=settings.point_value_paise,
        leaderboard_opt_out=acct.leaderboard_opt_out,
    )


async def history(
    session: AsyncSession, *, user_id: uuid.UUID, limit: int = 50, cursor: str | None = None
) -> s.EntryPage:
    """The customer's ledger, newest first, paged by a cursor of the last entry id."""
    stmt = select(LedgerEntry).where(LedgerEntry.user_id == user_id)
    if cursor:
        try:
            (after,) = cursors.decode(cursor)
            after_id = inputs.check_int(int(after))
        except (ValueError, TypeError):
            raise cursors.malformed() from None
        stmt = stmt.where(LedgerEntry.id < after_id)
    rows = (await session.scalars(stmt.order_by(LedgerEntry.id.desc()).limit(limit + 1))).all()
    page = rows[:limit]
    return s.EntryPage(
        items=[
            s.EntryRead(
                id=e.id,
                kind=e.kind,
                points=e.points,
                source=e.source,
                order_id=e.order_id,
                reason=e.reason,
                created_at=e.created_at,
            )
            for e in page
        ],
        next_cursor=cursors.encode([page[-1].id]) if len(rows) > limit else None,
    )


# -- redemption ---------------------------------------------------------------------------


async def redeem(
    session: AsyncSession,
    *,
    principal: Principal,
    order_id: uuid.UUID,
    points: int,
    settings: LoyaltySettings,
) -> s.RedemptionRead:
    """Hold `points` against the caller's unpaid order as a discount. Asked again for the same
    order, the existing hold comes back (one hold per order). 404 for another customer's order."""
    order = await session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None or order.user_id != principal.user_id:
        raise NotFound("no such order")
    held = await session.get(Redemption, order_id)
    if held is not None and held.status == "released":
        raise RedemptionClosed(
            "points were taken off this order and cannot go on it again; place the order again",
            extra={"status": order.status},
        )
    if held is not None:
        acct = await account(session, user_id=order.user_id)
        return _redemption(held, acct.balance)
    if order.status != "pending_payment":
        raise RedemptionClosed(
            f"points can be used only on an order waiting for payment; this one is {order.status}",
            extra={"status": order.status},
        )
    await _not_paying(session, order)
    acct = await account(session, user_id=order.user_id)
    cap = rules.order_cap(
        order_total_paise=order.total_paise,
        point_value_paise=settings.point_value_paise,
        max_percent=settings.redeem_max_percent,
        min_due_paise=rules.MIN_DUE_PAISE,
    )
    if points > cap:
        raise RedemptionTooLarge(f"at most {cap} points can be used on this order", extra={"max_points": cap})
    await post(
        session,
        user_id=order.user_id,
        kind="redeem",
        points=-points,
        source=f"redeem:{order.id}",
        order_id=order.id,
        actor_id=principal.user_id,
    )
    row = Redemption(
        order_id=order.id,
        user_id=order.user_id,
        points=points,
        value_paise=points * settings.point_value_paise,
        status="held",
    )
    session.add(row)
    orders.set_discount(order, row.value_paise)
    await session.flush()
    await session.refresh(acct)
    return _redemption(row, acct.balance)


async def _not_paying(session: AsyncSession, order: Order) -> None:
    """Points go on (or come off) an order before paying starts: the Razorpay order is made
    once, for what is due then. The caller holds the order's lock, which starting to pay takes
    too, so the two cannot cross."""
    started = await session.scalar(select(Checkout.order_id).where(Checkout.order_id == order.id))
    if started is not None:
        raise RedemptionClosed(
            "paying this order has started, so its points are fixed; use points before choosing how to pay",
            extra={"status": order.status},
        )


def _redemption(row: Redemption, balance_now: int) -> s.RedemptionRead:
    return s.RedemptionRead(
        order_id=row.order_id,
        points=row.points,
        value_paise=row.value_paise,
        status=row.status,
        balance=balance_now,
    )


async def release(session: AsyncSession, *, order_id: uuid.UUID, reason: str) -> int:
    """Give back the points held against an order (cancelled, expired or refunded); once."""
    row = await session.scalar(select(Redemption).where(Redemption.order_id == order_id).with_for_update())
    if row is None or row.status == "released":
        return 0
    row.status = "released"
    await post(
        session,
        user_id=row.user_id,
        kind="release",
        points=row.points,
        source=f"release:{order_id}",
        order_id=order_id,
        reason=reason,
    )
    return row.points


async def cancel_redemption(session: AsyncSession, *, principal: Principal, order_id: uuid.UUID) -> int:
    """The customer takes the points back off an order still waiting for payment."""
    order = await session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None or order.user_id != principal.user_id:
        raise NotFound("no such order")
    if order.status != "pending_payment":
        raise RedemptionClosed(
            f"the order is {order.status}; its points are settled with it", extra={"status": order.status}
        )
    row = await session.get(Redemption, order_id)
    if row is None or row.status == "released":
        raise NotFound("no points are held on this order")
    await _not_paying(session, order)
    orders.set_discount(order, 0)
    return await release(session, order_id=order_id, reason="taken off the order by the customer")


# -- staff --------------------------------------------------------------------------------


async def adjust(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    points: int,
    reason: str,
    source: str,
    actor: audit.AuditContext,
    settings: LoyaltySettings,
) -> s.BalanceRead | None:
    """A staff correction with a reason, audited; a negative one cannot go below zero.
    Returns None when this `source` (the request's idempotency) was already applied."""
    exists = await session.scalar(text("SELECT 1 FROM users WHERE id = :u"), {"u": user_id})
    if exists is None:
        raise NotFound("no such customer")
    before = await account(session, user_id=user_id)
    was = {"balance": before.balance, "debt": before.debt}
    entry = await post(
        session,
        user_id=user_id,
        kind="adjust",
        points=points,
        source=source,
        reason=reason,
        actor_id=actor.actor_id,
    )
    if entry is None:
        return None
    after = await account(session, user_id=user_id)
    await audit.record(
        session,
        actor,
        action="loyalty.points_adjusted",
        target_type="user",
        target_id=user_id,
        before=was,
        after={
            "balance": after.balance,
            "debt": after.debt,
            "points": points,
            "reason": reason,
            "entry": entry,
        },
    )
    return await balance(session, user_id=user_id, settings=settings)


async def set_opt_out(session: AsyncSession, *, user_id: uuid.UUID, opt_out: bool) -> Account:
    """The customer's leaderboard choice (the caller refreshes the boards after commit)."""
    acct = await account(session, user_id=user_id)
    acct.leaderboard_opt_out = opt_out
    await session.flush()
    return acct


# -- checks -------------------------------------------------------------------------------

_SUMS = text(
    """
    SELECT a.user_id, a.balance, a.debt, a.pending,
           COALESCE(l.net, 0) AS net, COALESCE(p.pending, 0) AS pending_rows
    FROM loyalty_accounts a
    LEFT JOIN (SELECT user_id, SUM(points) AS net FROM loyalty_ledger GROUP BY user_id) l
           ON l.user_id = a.user_id
    LEFT JOIN (SELECT user_id, SUM(points) AS pending FROM loyalty_order_points
               WHERE status = 'pending' GROUP BY user_id) p ON p.user_id = a.user_id
    """
)


async def verify(session: AsyncSession) -> list[dict[str, object]]:
    """Every account whose balance, debt or pending points differ from what the ledger and
    the order awards say (empty: all agree). Also ledger owners without an account."""
    out: list[dict[str, object]] = []
    for row in (await session.execute(_SUMS)).mappings():
        net = int(row["net"])
        want_balance, want_debt = max(net, 0), max(-net, 0)
        if (row["balance"], row["debt"], row["pending"]) != (
            want_balance,
            want_debt,
            int(row["pending_rows"]),
        ):
            out.append(
                {
                    "user_id": str(row["user_id"]),
                    "balance": row["balance"],
                    "debt": row["debt"],
                    "pending": row["pending"],
                    "ledger_balance": want_balance,
                    "ledger_debt": want_debt,
                    "ledger_pending": int(row["pending_rows"]),
                }
            )
    orphans = await session.execute(
        select(LedgerEntry.user_id, func.sum(LedgerEntry.points))
        .where(~LedgerEntry.user_id.in_(select(Account.user_id)))
        .group_by(LedgerEntry.user_id)
    )
    out += [{"user_id": str(u), "balance": None, "ledger_net": int(n)} for u, n in orphans]
    return out


async def rebuild(session: AsyncSession) -> int:
    """Set every account's balance, debt and pending from the ledger and the order awards;
    returns how many accounts changed. Locks the accounts it rewrites."""
    await session.execute(
        text(
            "INSERT INTO loyalty_accounts (user_id) SELECT DISTINCT user_id FROM loyalty_ledger "
            "ON CONFLICT DO NOTHING"
        )
    )
    result = await session.execute(
        text(
            """
            WITH want AS (
                SELECT a.user_id, COALESCE(l.net, 0) AS net, COALESCE(p.pending, 0) AS pending
                FROM loyalty_accounts a
                LEFT JOIN (SELECT user_id, SUM(points) AS net FROM loyalty_ledger GROUP BY user_id) l
                       ON l.user_id = a.user_id
                LEFT JOIN (SELECT user_id, SUM(points) AS pending FROM loyalty_order_points
                           WHERE status = 'pending' GROUP BY user_id) p ON p.user_id = a.user_id
            )
            UPDATE loyalty_accounts a
            SET balance = GREATEST(w.net, 0), debt = GREATEST(-w.net, 0), pending = w.pending,
                updated_at = now()
            FROM want w
            WHERE a.user_id = w.user_id
              AND (a.balance, a.debt, a.pending)
                  IS DISTINCT FROM (GREATEST(w.net, 0), GREATEST(-w.net, 0), w.pending)
            """
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def staff_ledger(
    session: AsyncSession, *, user_id: uuid.UUID, limit: int, cursor: str | None
) -> s.EntryPage:
    """A customer's ledger for staff holding loyalty:read_all."""
    exists = await session.scalar(text("SELECT 1 FROM users WHERE id = :u"), {"u": user_id})
    if exists is None:
        raise NotFound("no such customer")
    return await history(session, user_id=user_id, limit=limit, cursor=cursor)
