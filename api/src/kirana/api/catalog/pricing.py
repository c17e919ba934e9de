"""Pure pricing: GST included in Indian retail prices, line and cart totals, availability.

Called by the cart (every read re-prices) and by checkout (the order snapshot), and tested
table-driven without a database. Prices are tax-inclusive (as MRP is by law), so the tax is the
included component: price * rate / (100 + rate), rounded half up to the paisa.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from kirana.api.catalog.models import TAX_CLASSES


class Availability(StrEnum):
    ok = "ok"
    insufficient_stock = "insufficient_stock"
    out_of_stock = "out_of_stock"
    unavailable = "unavailable"  # unpublished product or retired variant


def tax_rate(tax_class: str) -> int:
    return TAX_CLASSES[tax_class]


def included_tax(amount_paise: int, rate_percent: int) -> int:
    """The GST contained in a tax-inclusive amount, rounded half up."""
    if amount_paise < 0:
        raise ValueError("amount must not be negative")
    if rate_percent == 0:
        return 0
    numerator = amount_paise * rate_percent
    denominator = 100 + rate_percent
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (1 if remainder * 2 >= denominator else 0)


def availability(*, quantity: int, stock: int, sellable: bool) -> Availability:
    if not sellable:
        return Availability.unavailable
    if stock <= 0:
        return Availability.out_of_stock
    if stock < quantity:
        return Availability.insufficient_stock
    return Availability.ok


def discount_percent(price_paise: int, mrp_paise: int) -> int:
    """Whole percent off MRP, rounded down (never overstated)."""
    if mrp_paise <= 0 or price_paise >= mrp_paise:
        return 0
    return (mrp_paise - price_paise) * 100 // mrp_paise


@dataclass(frozen=True)
class PricedLine:
    sku: str
    quantity: int
    unit_price_paise: int
    unit_mrp_paise: int
    tax_rate_percent: int
    line_total_paise: int
    line_mrp_paise: int
    tax_paise: int


def price_line(*, sku: str, quantity: int, price_paise: int, mrp_paise: int, tax_class: str) -> PricedLine:
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    rate = tax_rate(tax_class)
    total = price_paise * quantity
    return PricedLine(
        sku=sku,
        quantity=quantity,
        unit_price_paise=price_paise,
        unit_mrp_paise=mrp_paise,
        tax_rate_percent=rate,
        line_total_paise=total,
        line_mrp_paise=mrp_paise * quantity,
        tax_paise=included_tax(total, rate),
    )


@dataclass(frozen=True)
class Totals:
    item_count: int
    subtotal_paise: int
    mrp_total_paise: int
    savings_paise: int
    tax_paise: int
    total_paise: int


def totals(lines: Iterable[PricedLine]) -> Totals:
    items = subtotal = mrp = tax = 0
    for line in lines:
        items += line.quantity
        subtotal += line.line_total_paise
        mrp += line.line_mrp_paise
        tax += line.tax_paise
    return Totals(
        item_count=items,
        subtotal_paise=subtotal,
        mrp_total_paise=mrp,
        savings_paise=mrp - subtotal,
        tax_paise=tax,
        total_paise=subtotal,  # prices include GST; delivery fees belong to the fulfilment issue
    )
