"""Points that orders earn: pending when paid, credited when delivered, reversed on refund.

Called by `loyalty.flows` for each `order.status_changed` event (at least once, in any order
across worker replicas). Each step is idempotent twice over: the order's award row moves
forward only from the status it expects (`UPDATE ... WHERE status = 'pending'` under the row
lock, so of ten concurrent deliveries one credits), and the ledger's unique source
(`earn:<order>`, `reverse:<order>`) would refuse a second entry anyway.

A refund (`payment.refund_updated`, processed) reverses the refunded share of what a delivered
order earned, and the order becoming refunded the rest, even if it was spent: the balance goes down as far as
zero and the rest becomes debt (see `loyalty.service`). Points held against the order are
given back when it is cancelled, expires or is refunded. No HTTP, no commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.db.base import utcnow
from kirana.api.loyalty import rules
from kirana.api.loyalty import service as loyalty
from kirana.api.loyalty.models import Account, Campaign, LedgerEntry, OrderPoints, Redemption
from kirana.api.orders.models import Order
from kirana.api.payments.models import LedgerEntry as PaymentLedger
from kirana.api.payments.models import Refund
from kirana.api.settings import LoyaltySettings

SPEND_WINDOW = timedelta(days=365)

_LINES = text(
    """
    SELECT l.line_total_paise - l.tax_paise AS amount, c.slug AS category, c.path AS path,
           b.slug AS brand
    FROM order_lines l
    JOIN catalog_products p ON p.id = l.product_id
    JOIN catalog_categories c ON c.id = p.category_id
    LEFT JOIN catalog_brands b ON b.id = p.brand_id
    WHERE l.order_id = :o
    """
)


def city_of(order: Order) -> str | None:
    """The delivery city as a leaderboard scope name (lower case, dashes), if the order has one."""
    raw = (order.shipping_address or {}).get("city")
    if not isinstance(raw, str) or not raw.strip():
        return None
    return "-".join(raw.lower().split())[:100]


async def campaigns_at(session: AsyncSession, *, at: datetime) -> list[rules.CampaignRule]:
    """The campaigns live at `at`, as the pure earn rules read them."""
    rows = (
        await session.scalars(
            select(Campaign).where(
                Campaign.starts_at <= at, (Campaign.ends_at.is_(None)) | (Campaign.ends_at > at)
            )
        )
    ).all()
    return [
        rules.CampaignRule(
            store_code=c.store_code,
            category=c.category,
            brand=c.brand,
            bonus_per_100_rupees=c.bonus_per_100_rupees,
            multiplier_percent=c.multiplier_percent,
            starts_at=c.starts_at,
            ends_at=c.ends_at,
        )
        for c in rows
    ]


async def _award_row(session: AsyncSession, *, order: Order, settings: LoyaltySettings) -> bool:
    """Create the order's pending award if it has none; True when this call created it."""
    at = order.paid_at or utcnow()
    lines = [
        rules.Line(amount_paise=int(r.amount), category=r.category, category_path=r.path, brand=r.brand)
        for r in await session.execute(_LINES, {"o": order.id})
    ]
    await loyalty.ensure_account(session, user_id=order.user_id)
    tier_name = await session.scalar(select(Account.tier).where(Account.user_id == order.user_id))
    points = rules.earn(
        lines,
        store_code=order.store_code,
        at=at,
        base_per_100_rupees=settings.points_per_100_rupees,
        campaigns=await campaigns_at(session, at=at),
        tier_multiplier_percent=rules.tier_named(tier_name or "bronze").multiplier_percent,
    )
    created = await session.scalar(
        insert(OrderPoints)
        .values(
            order_id=order.id,
            user_id=order.user_id,
            store_code=order.store_code,
            city=city_of(order),
            spend_paise=max(order.total_paise - order.tax_paise, 0),
            points=points,
            status="pending",
            paid_at=at,
        )
        .on_conflict_do_nothing()
        .returning(OrderPoints.points)
    )
    if created is None:
        return False
    await session.execute(
        update(Account).where(Account.user_id == order.user_id).values(pending=Account.pending + created)
    )
    return True


async def on_paid(session: AsyncSession, *, order_id: uuid.UUID, settings: LoyaltySettings) -> bool:
    """The order was paid: its points show as pending, and points held on it are spent. An order
    paid after it was cancelled or expired (a late capture that payments revives) had its points
    given back meanwhile, yet was paid at the discounted amount: the points are taken again, into
    debt if the balance no longer covers them."""
    order = await session.get(Order, order_id)
    if order is None:
        return False
    await session.execute(
        update(Redemption)
        .where(Redemption.order_id == order_id, Redemption.status == "held")
        .values(status="applied")
    )
    if order.discount_paise:
        released = (
            await session.execute(
                update(Redemption)
                .where(Redemption.order_id == order_id, Redemption.status == "released")
                .values(status="applied")
                .returning(Redemption.points)
            )
        ).first()
        if released is not None:
            await loyalty.post(
                session,
                user_id=order.user_id,
                kind="reverse",  # never refused: what the balance lacks becomes debt
                points=-int(released[0]),
                source=f"retake:{order_id}",
                order_id=order_id,
                reason="paid at the discounted amount after the points were given back",
            )
    return await _award_row(session, order=order, settings=settings)


@dataclass(frozen=True)
class Credited:
    user_id: uuid.UUID
    points: int


async def on_delivered(
    session: AsyncSession, *, order_id: uuid.UUID, settings: LoyaltySettings
) -> Credited | None:
    """The order was delivered: its pending points become spendable, once. Money refunded in
    part before that (or whose refund event was handled first) takes its share back at once."""
    order = await session.get(Order, order_id)
    if order is None:
        return None
    await _award_row(session, order=order, settings=settings)  # a paid event not seen yet
    now = utcnow()
    row = (
        await session.execute(
            update(OrderPoints)
            .where(OrderPoints.order_id == order_id, OrderPoints.status == "pending")
            .values(status="credited", delivered_at=now)
            .returning(OrderPoints.points, OrderPoints.store_code, OrderPoints.city)
        )
    ).first()
    if row is None:
        return None
    points, store_code, city = int(row[0]), row[1], row[2]
    await session.execute(
        update(Account).where(Account.user_id == order.user_id).values(pending=Account.pending - points)
    )
    if points > 0:
        await loyalty.post(
            session,
            user_id=order.user_id,
            kind="earn",
            points=points,
            source=f"earn:{order_id}",
            order_id=order_id,
            store_code=store_code,
            city=city,
            board_at=now,
        )
        credited = await session.scalar(select(OrderPoints).where(OrderPoints.order_id == order_id))
        if credited is not None:
            points -= await _reverse_refunded_share(session, row=credited)
    await recompute_tier(session, user_id=order.user_id)
    return Credited(order.user_id, points)


async def on_unpaid_closed(session: AsyncSession, *, order_id: uuid.UUID, reason: str) -> int:
    """Cancelled or expired: points held on it come back; pending points are void."""
    released = await loyalty.release(session, order_id=order_id, reason=reason)
    await _void_pending(session, order_id=order_id)
    return released


async def _void_pending(session: AsyncSession, *, order_id: uuid.UUID) -> None:
    row = (
        await session.execute(
            update(OrderPoints)
            .where(OrderPoints.order_id == order_id, OrderPoints.status == "pending")
            .values(status="void", closed_at=utcnow())
            .returning(OrderPoints.user_id, OrderPoints.points)
        )
    ).first()
    if row is not None:
        await session.execute(
            update(Account).where(Account.user_id == row[0]).values(pending=Account.pending - int(row[1]))
        )


async def _reverse(session: AsyncSession, *, row: OrderPoints, target: int, source: str) -> int:
    """Bring what has been reversed of the order's earning up to `target` points; the points
    reversed by this call."""
    already = -int(
        await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
                LedgerEntry.order_id == row.order_id, LedgerEntry.kind == "reverse"
            )
        )
        or 0
    )
    delta = min(target, row.points) - already
    if delta <= 0:
        return 0
    earn_id = await session.scalar(select(LedgerEntry.id).where(LedgerEntry.source == f"earn:{row.order_id}"))
    posted = await loyalty.post(
        session,
        user_id=row.user_id,
        kind="reverse",
        points=-delta,
        source=source,
        order_id=row.order_id,
        lot_id=earn_id,
        store_code=row.store_code,
        city=row.city,
        board_at=row.delivered_at,
        reason="order refunded",
    )
    return delta if posted is not None else 0


async def money_totals(session: AsyncSession, *, order_id: uuid.UUID) -> tuple[int, int]:
    """(paise taken, paise refunded and processed) for the order, from the payments tables."""
    taken = await session.scalar(
        select(func.coalesce(func.sum(PaymentLedger.amount_paise), 0)).where(
            PaymentLedger.order_id == order_id, PaymentLedger.kind.in_(["captured", "cod_collected"])
        )
    )
    refunded = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount_paise), 0)).where(
            Refund.order_id == order_id, Refund.status == "processed"
        )
    )
    return int(taken or 0), int(refunded or 0)


async def on_partial_refund(session: AsyncSession, *, order_id: uuid.UUID) -> Credited | None:
    """Part of a delivered order's money went back: reverse the same share of its points
    (rounded down; the order becoming refunded reverses the rest). Orders not yet delivered
    are settled by their delivery or their full refund."""
    row = await session.scalar(select(OrderPoints).where(OrderPoints.order_id == order_id).with_for_update())
    if row is None or row.status != "credited":
        return None
    reversed_now = await _reverse_refunded_share(session, row=row)
    return Credited(row.user_id, -reversed_now) if reversed_now else None


async def _reverse_refunded_share(session: AsyncSession, *, row: OrderPoints) -> int:
    """Reverse the share of a credited earning that matches the share of the order's money
    refunded so far (rounded down); the points reversed by this call."""
    taken, refunded = await money_totals(session, order_id=row.order_id)
    if taken <= 0 or refunded <= 0:
        return 0
    target = row.points * min(refunded, taken) // taken
    return await _reverse(session, row=row, target=target, source=f"reverse:{row.order_id}:{refunded}")


async def on_refunded(session: AsyncSession, *, order_id: uuid.UUID) -> Credited | None:
    """Refunded: the earning is reversed (into debt where the balance cannot cover it), pending
    points are void, and points the customer paid with come back."""
    await loyalty.release(session, order_id=order_id, reason="order refunded")
    await _void_pending(session, order_id=order_id)
    row = await session.scalar(select(OrderPoints).where(OrderPoints.order_id == order_id).with_for_update())
    if row is None or row.status != "credited":
        return None
    row.status = "reversed"
    row.closed_at = utcnow()
    reversed_now = await _reverse(session, row=row, target=row.points, source=f"reverse:{order_id}")
    await session.flush()
    await recompute_tier(session, user_id=row.user_id)
    return Credited(row.user_id, -reversed_now)


async def recompute_tier(session: AsyncSession, *, user_id: uuid.UUID, now: datetime | None = None) -> str:
    """Set the customer's 12-month spend and tier from their delivered, unrefunded orders."""
    since = (now or utcnow()) - SPEND_WINDOW
    spend = int(
        await session.scalar(
            select(func.coalesce(func.sum(OrderPoints.spend_paise), 0)).where(
                OrderPoints.user_id == user_id,
                OrderPoints.status == "credited",
                OrderPoints.delivered_at >= since,
            )
        )
        or 0
    )
    tier = rules.tier_for(spend).name
    await session.execute(
        update(Account).where(Account.user_id == user_id).values(spend_12m_paise=spend, tier=tier)
    )
    return tier
