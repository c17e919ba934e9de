"""Pure pricing: GST included in prices, totals, availability, discounts."""

from __future__ import annotations

import pytest

from kirana.api.catalog import pricing
from kirana.api.catalog.pricing import Availability


@pytest.mark.parametrize(
    ("amount", "rate", "tax"),
    [
        (10_500, 5, 500),  # ₹105 at 5% contains exactly ₹5
        (11_800, 18, 1_800),
        (89_700, 5, 4_271),  # 4271.43 rounds down
        (100, 18, 15),  # 15.25 rounds down
        (21, 5, 1),  # exactly 1.0
        (31, 5, 1),  # 1.476 -> 1
        (32, 5, 2),  # 1.523 -> 2
        (10_000, 0, 0),
        (0, 28, 0),
    ],
)
def test_included_tax_rounds_half_up_to_the_paisa(amount: int, rate: int, tax: int) -> None:
    assert pricing.included_tax(amount, rate) == tax


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ValueError):
        pricing.included_tax(-1, 5)


@pytest.mark.parametrize(
    ("quantity", "stock", "sellable", "expected"),
    [
        (1, 5, True, Availability.ok),
        (5, 5, True, Availability.ok),
        (6, 5, True, Availability.insufficient_stock),
        (1, 0, True, Availability.out_of_stock),
        (1, 5, False, Availability.unavailable),
        (1, 0, False, Availability.unavailable),
    ],
)
def test_availability(quantity: int, stock: int, sellable: bool, expected: Availability) -> None:
    assert pricing.availability(quantity=quantity, stock=stock, sellable=sellable) is expected


@pytest.mark.parametrize(
    ("price", "mrp", "pct"), [(15_900, 18_000, 11), (100, 100, 0), (50, 100, 50), (99, 100, 1), (100, 0, 0)]
)
def test_discount_is_never_overstated(price: int, mrp: int, pct: int) -> None:
    assert pricing.discount_percent(price, mrp) == pct


def test_totals_add_lines_and_savings() -> None:
    lines = [
        pricing.price_line(sku="A", quantity=2, price_paise=10_500, mrp_paise=12_000, tax_class="gst_5"),
        pricing.price_line(sku="B", quantity=1, price_paise=11_800, mrp_paise=11_800, tax_class="gst_18"),
    ]
    t = pricing.totals(lines)
    assert (t.item_count, t.subtotal_paise, t.mrp_total_paise, t.savings_paise, t.tax_paise) == (
        3,
        32_800,
        35_800,
        3_000,
        2_800,
    )
    assert t.total_paise == t.subtotal_paise


def test_zero_quantity_lines_are_refused() -> None:
    with pytest.raises(ValueError):
        pricing.price_line(sku="A", quantity=0, price_paise=1, mrp_paise=1, tax_class="gst_0")
