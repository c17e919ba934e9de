"""Achievement rules over a customer's delivered orders: progress, and when a target is reached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kirana.api.loyalty import achievements
from kirana.api.loyalty.achievements import Fact, Rule

MON = datetime(2026, 11, 2, 10, tzinfo=UTC)  # a Monday


def weeks(*offsets: int) -> list[Fact]:
    return [Fact(MON + timedelta(weeks=w, days=2), 100_00) for w in offsets]


@pytest.mark.parametrize(
    ("rule", "facts", "progress", "reached_index"),
    [
        (Rule("o5", "", "orders", 5), weeks(0, 0, 1), 3, None),
        (Rule("o5", "", "orders", 5), weeks(0, 1, 2, 3, 4, 5), 5, 4),
        (Rule("s", "", "spend_paise", 250_00), weeks(0, 1, 2), 250_00, 2),
        (Rule("w3", "", "streak_weeks", 3), weeks(0, 1, 3, 4), 2, None),
        (Rule("w3", "", "streak_weeks", 3), weeks(0, 2, 3, 4), 3, 3),
        (Rule("w2", "", "streak_weeks", 2), weeks(0, 0, 0), 1, None),
    ],
)
def test_progress(rule: Rule, facts: list[Fact], progress: int, reached_index: int | None) -> None:
    got = achievements.evaluate(rule, facts)
    assert got.value == progress
    assert got.reached_at == (facts[reached_index].delivered_at if reached_index is not None else None)


def test_categories_count_distinct() -> None:
    rule = Rule("c3", "", "categories", 3)
    facts = [
        Fact(MON, 1, frozenset({"atta", "dal"})),
        Fact(MON + timedelta(days=1), 1, frozenset({"dal"})),
        Fact(MON + timedelta(days=2), 1, frozenset({"ghee"})),
    ]
    got = achievements.evaluate(rule, facts)
    assert (got.value, got.reached_at) == (3, MON + timedelta(days=2))


def test_order_of_facts_does_not_matter() -> None:
    rule = achievements.BY_KEY["first_order"]
    facts = weeks(3, 1, 2)
    assert achievements.evaluate(rule, facts).reached_at == facts[1].delivered_at


def test_catalogue_is_well_formed() -> None:
    keys = [r.key for r in achievements.RULES]
    assert len(keys) == len(set(keys))
    assert all(r.metric in achievements.METRICS and r.target > 0 for r in achievements.RULES)
