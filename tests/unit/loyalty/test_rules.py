"""Pure points rules: earning, tiers, the redemption cap, the expiry walk, masking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kirana.api.loyalty import rules
from kirana.api.loyalty.rules import CampaignRule, Entry, Line

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def campaign(**kw: object) -> CampaignRule:
    base: dict[str, object] = {
        "store_code": None,
        "category": None,
        "brand": None,
        "bonus_per_100_rupees": 0,
        "multiplier_percent": 100,
        "starts_at": T0,
        "ends_at": None,
    }
    base.update(kw)
    return CampaignRule(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lines", "campaigns", "tier", "want"),
    [
        # ₹999.99 before tax at 10 points per ₹100 = 99.999 -> 99 (rounded down once)
        ([Line(99_999)], [], 100, 99),
        ([Line(50_000), Line(50_000)], [], 100, 100),
        # a bonus on one brand only
        (
            [Line(10_000, brand="amul"), Line(10_000, brand="tata")],
            [campaign(brand="amul", bonus_per_100_rupees=40)],
            100,
            60,
        ),
        # a category campaign matches a child category through its path
        (
            [Line(10_000, category="atta", category_path="grocery/atta")],
            [campaign(category="grocery", bonus_per_100_rupees=10)],
            100,
            20,
        ),
        # another store's campaign does not apply
        ([Line(10_000)], [campaign(store_code="other", bonus_per_100_rupees=90)], 100, 10),
        # the largest multiplier among matching campaigns, then the tier's
        ([Line(10_000)], [campaign(multiplier_percent=200), campaign(multiplier_percent=150)], 150, 30),
        # a campaign that has ended, or not started, gives nothing
        ([Line(10_000)], [campaign(ends_at=T0 + timedelta(days=1), bonus_per_100_rupees=90)], 100, 10),
        ([Line(10_000)], [campaign(starts_at=T0 + timedelta(days=30), bonus_per_100_rupees=90)], 100, 10),
        ([], [], 100, 0),
    ],
)
def test_earn(lines: list[Line], campaigns: list[CampaignRule], tier: int, want: int) -> None:
    at = T0 + timedelta(days=10)
    got = rules.earn(
        lines,
        store_code="blr-1",
        at=at,
        base_per_100_rupees=10,
        campaigns=campaigns,
        tier_multiplier_percent=tier,
    )
    assert got == want


@pytest.mark.parametrize(
    ("spend", "tier", "upcoming"),
    [
        (0, "bronze", "silver"),
        (4_999_99, "bronze", "silver"),
        (5_000_00, "silver", "gold"),
        (25_000_00, "gold", "platinum"),
        (10**12, "platinum", None),
    ],
)
def test_tiers(spend: int, tier: str, upcoming: str | None) -> None:
    assert rules.tier_for(spend).name == tier
    nxt = rules.next_tier(spend)
    assert (nxt.name if nxt else None) == upcoming


@pytest.mark.parametrize(
    ("total", "value", "share", "want"),
    [(100_00, 10, 20, 200), (99_99, 10, 20, 199), (100_00, 10, 0, 0), (0, 10, 20, 0), (100_00, 7, 50, 714)],
)
def test_order_cap(total: int, value: int, share: int, want: int) -> None:
    assert rules.order_cap(order_total_paise=total, point_value_paise=value, max_percent=share) == want


@pytest.mark.parametrize(
    ("total", "share", "want"),
    [(110, 20, 1), (100, 20, 0), (99, 50, 0), (125, 20, 2), (100_00, 20, 200), (100_00, 100, 990)],
)
def test_order_cap_leaves_a_rupee_to_pay_in_money(total: int, share: int, want: int) -> None:
    """Razorpay takes no order below ₹1: points pay at most the total less 100 paise."""
    cap = rules.order_cap(
        order_total_paise=total, point_value_paise=10, max_percent=share, min_due_paise=rules.MIN_DUE_PAISE
    )
    assert cap == want
    assert total - cap * 10 >= min(total, rules.MIN_DUE_PAISE)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def test_expiry_spends_oldest_first() -> None:
    entries = [
        Entry(1, "earn", 100, day(0)),
        Entry(2, "earn", 50, day(200)),
        Entry(3, "redeem", -120, day(300)),  # takes all of lot 1 and 20 of lot 2
    ]
    assert rules.lots(entries) == {1: (day(0), "earn", 0), 2: (day(200), "earn", 30)}
    assert rules.expiring(entries, cutoff=day(100)) == []  # lot 1 is spent; lot 2 is young
    assert rules.expiring(entries, cutoff=day(250)) == [(2, 30)]


def test_expiry_named_lot_and_debt() -> None:
    entries = [
        Entry(1, "earn", 100, day(0)),
        Entry(2, "earn", 80, day(10)),
        Entry(3, "reverse", -80, day(20), lot_id=2),  # the refund of order 2 takes its own lot
        Entry(4, "redeem", -100, day(30)),
        Entry(5, "reverse", -30, day(40), lot_id=1),  # nothing left: 30 of debt
        Entry(6, "earn", 50, day(50)),  # pays the debt first
    ]
    assert rules.lots(entries)[6] == (day(50), "earn", 20)
    assert rules.expiring(entries, cutoff=day(400)) == [(6, 20)]


def test_released_and_adjusted_points_do_not_expire() -> None:
    entries = [Entry(1, "release", 40, day(0)), Entry(2, "adjust", 10, day(0)), Entry(3, "earn", 5, day(0))]
    assert rules.expiring(entries, cutoff=day(1)) == [(3, 5)]


@pytest.mark.parametrize(
    ("name", "want"),
    [("Ravi Kumar", "R*** K***"), ("asha", "A***"), ("", "Customer 1234"), ("A B C", "A*** B***")],
)
def test_mask(name: str, want: str) -> None:
    assert rules.mask(name, "12345678-0000") == want
