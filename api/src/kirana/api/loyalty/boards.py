"""Leaderboard keys, pure: which sorted sets an earning counts in, and period names.

A customer's score in a set is the points their delivered orders earned in that period and
scope, minus what refunds reversed (a reversal counts where its earning did). Periods: the ISO
week (`week:2026-W49`), the calendar month (`month:2026-12`) and all time (`all`); scopes: the
whole shop (`all`), a store (`store:<code>`) and a delivery city (`city:<name>`). Used by
`loyalty.leaderboards` (Redis) and tested in tests/unit/loyalty/test_boards.py.
"""

from __future__ import annotations

import re
from datetime import datetime

PREFIX = "kirana:lb:"
SCOPE_RE = re.compile(r"^(all|store:[a-z0-9][a-z0-9_\-]{0,39}|city:[a-z0-9][a-z0-9\-]{0,99})$")


def week_key(at: datetime) -> str:
    year, week, _ = at.isocalendar()
    return f"week:{year}-W{week:02d}"


def month_key(at: datetime) -> str:
    return f"month:{at.year}-{at.month:02d}"


def period_key(period: str, at: datetime) -> str:
    if period == "week":
        return week_key(at)
    if period == "month":
        return month_key(at)
    return "all"


def key(period: str, scope: str) -> str:
    return f"{PREFIX}{period}:{scope}"


def keys_for(board_at: datetime, store_code: str | None, city: str | None) -> list[str]:
    """Every set an entry made at `board_at` in this store and city counts in."""
    scopes = ["all"]
    if store_code:
        scopes.append(f"store:{store_code}")
    if city:
        scopes.append(f"city:{city}")
    periods = [week_key(board_at), month_key(board_at), "all"]
    return [key(p, sc) for p in periods for sc in scopes]
