"""Achievement rules, declared as data, and the pure evaluation of a customer's progress.

`RULES` is the catalogue: each rule names a metric over the customer's delivered, unrefunded
orders (`Fact`) and a target. `evaluate` gives the progress (capped at the target) and, once
reached, the time the fact that reached it happened, which becomes the unlock time; so the
worker (on every delivery or refund) and `kirana achievements backfill RULE` (over history)
agree on the answer. Adding a rule is adding a line here, then backfilling it.
No I/O; `loyalty.service` stores the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Fact:
    """One delivered order that still counts (not refunded)."""

    delivered_at: datetime
    spend_paise: int
    categories: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Rule:
    key: str
    title: str
    metric: str  # orders | spend_paise | streak_weeks | categories
    target: int


RULES: tuple[Rule, ...] = (
    Rule("first_order", "First order delivered", "orders", 1),
    Rule("orders_5", "5 orders", "orders", 5),
    Rule("orders_25", "25 orders", "orders", 25),
    Rule("orders_100", "100 orders", "orders", 100),
    Rule("spend_10k", "Spent ₹10,000", "spend_paise", 10_000_00),
    Rule("spend_50k", "Spent ₹50,000", "spend_paise", 50_000_00),
    Rule("streak_4w", "Ordered 4 weeks in a row", "streak_weeks", 4),
    Rule("streak_12w", "Ordered 12 weeks in a row", "streak_weeks", 12),
    Rule("explorer_5", "Bought from 5 categories", "categories", 5),
    Rule("explorer_15", "Bought from 15 categories", "categories", 15),
)
BY_KEY = {r.key: r for r in RULES}
METRICS = frozenset({"orders", "spend_paise", "streak_weeks", "categories"})


def _week(at: datetime) -> int:
    """A running ISO-week number (Monday-based), so consecutive weeks differ by one."""
    monday = (at - timedelta(days=at.weekday())).date()
    return monday.toordinal() // 7


@dataclass(frozen=True)
class Progress:
    value: int  # capped at the target
    reached_at: datetime | None


def evaluate(rule: Rule, facts: Sequence[Fact]) -> Progress:
    """The customer's progress on `rule` and when the target was first reached."""
    ordered = sorted(facts, key=lambda f: f.delivered_at)
    value = 0
    best = 0
    seen: set[str] = set()
    weeks: set[int] = set()
    for f in ordered:
        if rule.metric == "orders":
            value += 1
        elif rule.metric == "spend_paise":
            value += f.spend_paise
        elif rule.metric == "categories":
            seen |= f.categories
            value = len(seen)
        elif rule.metric == "streak_weeks":
            weeks.add(_week(f.delivered_at))
            w, run = _week(f.delivered_at), 0
            while w - run in weeks:
                run += 1
            best = max(best, run)
            value = best
        if value >= rule.target:
            return Progress(rule.target, f.delivered_at)
    return Progress(min(value, rule.target), None)
