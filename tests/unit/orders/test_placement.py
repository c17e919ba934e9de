"""`allocate`: each order decided in turn against the locked stock, without a database; and the
one parser of a locked variant row in both forms it arrives in."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from kirana.api.cart import service as carts
from kirana.api.catalog.errors import NotSellable, OutOfStock, PriceChanged, UnknownSku
from kirana.api.errors import InvalidInput, KiranaError
from kirana.api.orders import placement, sql

POLICY = placement.Policy()


def _row(sku: str, *, stock: int = 10, price: int = 10_000, sellable: bool = True) -> dict[str, Any]:
    return {
        "id": uuid.uuid5(uuid.NAMESPACE_URL, sku),
        "product_id": uuid.uuid5(uuid.NAMESPACE_DNS, sku),
        "sku": sku,
        "price_paise": price,
        "mrp_paise": price,
        "tax_class": "gst_5",
        "stock": stock,
        "sellable": sellable,
        "title": sku.title(),
        "attributes": {},
    }


def _found(*rows: dict[str, Any]) -> dict[str, sql.LockedVariant]:
    return {row["sku"]: sql.locked_variant(row) for row in rows}


def _order(*lines: tuple[str, int], expected: int | None = None) -> placement.Placement:
    return placement.Placement(
        uuid.uuid4(), [carts.Line(sku, qty) for sku, qty in lines], POLICY, expected_total_paise=expected
    )


def _verdicts(outcomes: list[placement.Accepted | KiranaError]) -> list[str]:
    return ["accepted" if isinstance(o, placement.Accepted) else type(o).__name__ for o in outcomes]


@pytest.mark.parametrize(
    ("orders", "stock", "verdicts"),
    [
        ([[("A", 1)]], 1, ["accepted"]),
        ([[("A", 2)]], 1, ["OutOfStock"]),
        # Later orders see only what the earlier ones left.
        ([[("A", 1)], [("A", 1)]], 1, ["accepted", "OutOfStock"]),
        ([[("A", 2)], [("A", 1)], [("A", 1)]], 3, ["accepted", "accepted", "OutOfStock"]),
        # A refused order takes nothing: the next one still gets the stock.
        ([[("A", 5)], [("A", 3)]], 3, ["OutOfStock", "accepted"]),
        # Repeated lines of one SKU add up before the check.
        ([[("A", 1), ("A", 1)]], 1, ["OutOfStock"]),
        ([[("A", 1), ("A", 1)]], 2, ["accepted"]),
        ([[("A", 0)]], 5, ["InvalidInput"]),
        ([[("A", 51)]], 100, ["InvalidInput"]),  # over the per-line limit
        ([[]], 5, ["InvalidInput"]),
        ([[("NOPE", 1)]], 5, ["UnknownSku"]),
        ([[("A", 1), ("NOPE", 1)], [("A", 1)]], 1, ["UnknownSku", "accepted"]),
    ],
)
def test_each_order_is_decided_against_the_stock_the_ones_before_it_left(
    orders: list[list[tuple[str, int]]], stock: int, verdicts: list[str]
) -> None:
    found = _found(_row("A", stock=stock))
    assert _verdicts(placement.allocate([_order(*lines) for lines in orders], found)) == verdicts
    assert found["A"]["stock"] == stock  # the rows themselves are not changed


def test_refusals_carry_what_the_client_needs_to_fix_the_order() -> None:
    found = _found(_row("A", stock=1), _row("OFF", sellable=False))
    out_of_stock, unsellable, unknown = placement.allocate(
        [_order(("A", 3)), _order(("OFF", 1)), _order(("X", 1), ("Y", 1))], found
    )
    assert isinstance(out_of_stock, OutOfStock) and out_of_stock.status == 409
    assert out_of_stock.extra == {"lines": [{"sku": "A", "requested": 3, "available": 1}]}
    assert isinstance(unsellable, NotSellable) and unsellable.extra == {"skus": ["OFF"]}
    assert isinstance(unknown, UnknownSku) and unknown.status == 422
    assert unknown.extra == {"skus": ["X", "Y"]}


@pytest.mark.parametrize(
    ("expected", "verdict"),
    [(None, "accepted"), (20_000, "accepted"), (19_999, "PriceChanged"), (20_001, "PriceChanged")],
)
def test_an_expected_total_must_match_the_price_under_the_lock(expected: int | None, verdict: str) -> None:
    # 2 x 10,000 paise, GST included in the price.
    (outcome,) = placement.allocate([_order(("A", 2), expected=expected)], _found(_row("A")))
    assert _verdicts([outcome]) == [verdict]
    if isinstance(outcome, PriceChanged):
        assert outcome.extra == {"expected_total_paise": expected, "total_paise": 20_000}


def test_an_accepted_order_is_priced_by_sku_with_the_variants_it_takes() -> None:
    found = _found(_row("B", price=5_000), _row("A", price=10_000), _row("C"))
    (accepted,) = placement.allocate([_order(("B", 1), ("A", 2))], found)
    assert isinstance(accepted, placement.Accepted)
    assert [line.sku for line in accepted.priced] == ["A", "B"]
    assert set(accepted.variants) == {"A", "B"}
    assert accepted.store_code == POLICY.store_code
    assert accepted.totals.subtotal_paise == 25_000


def test_bad_input_is_refused_before_anything_is_decided() -> None:
    with pytest.raises(InvalidInput):
        placement._wanted([carts.Line("A", -1)], POLICY)
    assert placement._wanted([carts.Line("A", 2), carts.Line("B", 1), carts.Line("A", 3)], POLICY) == {
        "A": 5,
        "B": 1,
    }


def test_a_locked_variant_row_reads_the_same_from_a_record_and_from_json() -> None:
    record = _row("A")
    as_json = record | {"id": str(record["id"]), "product_id": str(record["product_id"])}
    assert sql.locked_variant(record) == sql.locked_variant(as_json)
    assert sql.locked_variant(as_json)["id"] == record["id"]
    with pytest.raises(KeyError, match="price_paise"):
        sql.locked_variant({k: v for k, v in record.items() if k != "price_paise"})
