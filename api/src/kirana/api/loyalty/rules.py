"""Pure points arithmetic: what an order earns, tiers, what may be redeemed, what expires.

No I/O; `loyalty.awards`, `loyalty.service` and the expiry job call these, and
tests/unit/loyalty/test_rules.py tables them. Points are integers; money is paise.

Earning: every line's pre-tax amount earns the base rate (points per ₹100) plus the bonus of
each live campaign that matches the line (store, category, brand); the order's sum is then
multiplied by the largest live campaign multiplier and by the customer's tier multiplier, and
rounded down once at the end.

Expiry walks the ledger oldest first: credits (earn, release, positive adjust) are lots, debits
use the lot they name (an expiry, the reversal of an order's earning) or else the oldest lots;
a debit beyond every lot is debt, which the next credits pay before they become lots.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Tier:
    name: str
    min_spend_paise: int
    multiplier_percent: int


# Spend over the last 12 months (delivered, minus refunded), before tax.
TIERS: tuple[Tier, ...] = (
    Tier("bronze", 0, 100),
    Tier("silver", 5_000_00, 125),
    Tier("gold", 25_000_00, 150),
    Tier("platinum", 1_00_000_00, 200),
)


def tier_for(spend_paise: int) -> Tier:
    """The highest tier whose threshold the spend reaches."""
    found = TIERS[0]
    for tier in TIERS:
        if spend_paise >= tier.min_spend_paise:
            found = tier
    return found


def tier_named(name: str) -> Tier:
    return next((t for t in TIERS if t.name == name), TIERS[0])


def next_tier(spend_paise: int) -> Tier | None:
    return next((t for t in TIERS if t.min_spend_paise > spend_paise), None)


@dataclass(frozen=True)
class Line:
    """An order line as earning sees it: its amount before tax, and what it is."""

    amount_paise: int
    category: str | None = None  # slug; a campaign on a parent category matches its path
    category_path: str = ""
    brand: str | None = None


@dataclass(frozen=True)
class CampaignRule:
    store_code: str | None
    category: str | None
    brand: str | None
    bonus_per_100_rupees: int
    multiplier_percent: int
    starts_at: datetime
    ends_at: datetime | None


def live(rule: CampaignRule, at: datetime) -> bool:
    return rule.starts_at <= at and (rule.ends_at is None or at < rule.ends_at)


def matches(rule: CampaignRule, line: Line, store_code: str) -> bool:
    if rule.store_code is not None and rule.store_code != store_code:
        return False
    if rule.brand is not None and rule.brand != line.brand:
        return False
    if rule.category is not None:
        path = line.category_path or (line.category or "")
        parts = path.split("/") if path else []
        if rule.category not in parts:
            return False
    return True


def earn(
    lines: Sequence[Line],
    *,
    store_code: str,
    at: datetime,
    base_per_100_rupees: int,
    campaigns: Iterable[CampaignRule] = (),
    tier_multiplier_percent: int = 100,
) -> int:
    """Points an order earns. Rates are per ₹100 (10,000 paise) before tax; rounded down once."""
    active = [c for c in campaigns if live(c, at)]
    # Numerator in paise x points-per-100-rupees; divided by 10,000 (and the percents) at the end.
    raw = 0
    multiplier = 100
    for line in lines:
        rate = base_per_100_rupees
        for c in active:
            if matches(c, line, store_code):
                rate += c.bonus_per_100_rupees
                multiplier = max(multiplier, c.multiplier_percent)
        raw += max(line.amount_paise, 0) * rate
    return raw * multiplier * tier_multiplier_percent // (10_000 * 100 * 100)


# Razorpay takes no order below one rupee: points leave at least that much to pay in money.
MIN_DUE_PAISE = 100


def order_cap(
    *, order_total_paise: int, point_value_paise: int, max_percent: int, min_due_paise: int = 0
) -> int:
    """The most points one order may take: the share of its total that points may pay,
    in whole points (rounded down, so the discount never exceeds that share), leaving at
    least `min_due_paise` to pay in money."""
    if point_value_paise <= 0 or order_total_paise <= 0:
        return 0
    share = order_total_paise * max_percent // 100
    return max(0, min(share, order_total_paise - min_due_paise)) // point_value_paise


@dataclass(frozen=True)
class Entry:
    """A ledger entry as the expiry walk reads it."""

    id: int
    kind: str
    points: int
    created_at: datetime
    lot_id: int | None = None


CREDIT_KINDS = frozenset({"earn", "release"})


@dataclass
class _Lot:
    created_at: datetime
    kind: str
    left: int


def lots(entries: Iterable[Entry]) -> dict[int, tuple[datetime, str, int]]:
    """What is left of each credit after the debits (entries in id order):
    {entry id: (created_at, kind, points left)}. Debt left at the end is not in it."""
    left: dict[int, _Lot] = {}
    debt = 0
    for e in entries:
        if e.kind in CREDIT_KINDS or (e.kind == "adjust" and e.points > 0):
            pay = min(debt, e.points)
            debt -= pay
            left[e.id] = _Lot(e.created_at, e.kind, e.points - pay)
            continue
        need = -e.points
        named = [left[e.lot_id]] if e.lot_id is not None and e.lot_id in left else []
        for lot in named + list(left.values()):  # dicts keep insertion (= id) order
            take = min(need, lot.left)
            lot.left -= take
            need -= take
            if need == 0:
                break
        debt += need
    return {lid: (lot.created_at, lot.kind, lot.left) for lid, lot in left.items()}


def expiring(entries: Iterable[Entry], *, cutoff: datetime) -> list[tuple[int, int]]:
    """(lot id, points) to expire: what is left of earnings made before `cutoff`, oldest first.
    Released redemptions and adjustments do not expire (they were never earned by a purchase)."""
    return [
        (lid, left)
        for lid, (created, kind, left) in sorted(lots(entries).items())
        if kind == "earn" and left > 0 and created < cutoff
    ]


def mask(name: str, user_id: str) -> str:
    """A leaderboard display name: first letter of each word, the rest hidden."""
    words = [w for w in name.split() if w]
    if not words:
        return f"Customer {user_id[:4]}"
    return " ".join(w[0].upper() + "***" for w in words[:2])
