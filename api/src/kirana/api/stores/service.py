"""Which store codes take orders. Called by order placement (`orders.placement`) and the
group-commit batch (`orders.batch`, through `ACTIVE_SELECT`). No HTTP, no commit."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.errors import InvalidInput
from kirana.api.stores.models import Store

# The active codes among `:requested_stores`, for statements that compose it (orders.batch).
ACTIVE_SELECT = "SELECT code FROM stores WHERE is_active AND code = ANY(CAST(:requested_stores AS text[]))"


class UnknownStore(InvalidInput):
    status, code, title = 422, "unknown-store", "Unknown store"


def unknown(code: str) -> UnknownStore:
    """The refusal of an order naming a store that does not exist or takes no orders."""
    return UnknownStore(f"no open store has the code {code!r}", extra={"store_code": code})


async def active_codes(session: AsyncSession, codes: Iterable[str]) -> frozenset[str]:
    """The codes among `codes` of stores that take orders."""
    wanted = sorted(set(codes))
    if not wanted:
        return frozenset()
    rows = await session.scalars(select(Store.code).where(Store.is_active, Store.code.in_(wanted)))
    return frozenset(rows)
