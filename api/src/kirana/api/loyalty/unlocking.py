"""Storing achievement progress and unlocking each achievement exactly once.

`evaluate_user` reads the customer's delivered, unrefunded orders, asks the pure rules
(`loyalty.achievements`) for progress, writes it, and unlocks what was reached with
`UPDATE ... WHERE unlocked_at IS NULL RETURNING`: of concurrent evaluations only the one that
flips the row emits `loyalty.achievement_unlocked`, which the outbox relay pushes to the
customer's real-time channel. An unlocked achievement stays unlocked (a later refund does not
take it back). Called by `loyalty.flows` (in the worker) and by the backfill command.
No HTTP, no commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.loyalty import achievements
from kirana.api.loyalty import schemas as s
from kirana.api.loyalty.achievements import Fact, Rule
from kirana.api.loyalty.models import Achievement
from kirana.api.outbox import service as outbox

TOPIC = "loyalty.achievement_unlocked"

_FACTS = text(
    """
    SELECT op.user_id, op.delivered_at, op.spend_paise,
           COALESCE(array_agg(DISTINCT c.slug) FILTER (WHERE c.slug IS NOT NULL), '{}') AS categories
    FROM loyalty_order_points op
    LEFT JOIN order_lines l ON l.order_id = op.order_id
    LEFT JOIN catalog_products p ON p.id = l.product_id
    LEFT JOIN catalog_categories c ON c.id = p.category_id
    WHERE op.status = 'credited' AND op.user_id = ANY(:users)
    GROUP BY op.order_id, op.user_id, op.delivered_at, op.spend_paise
    """
)


async def facts_for(session: AsyncSession, *, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Fact]]:
    """Each customer's delivered orders that still count."""
    out: dict[uuid.UUID, list[Fact]] = {u: [] for u in user_ids}
    for row in await session.execute(_FACTS, {"users": list(user_ids)}):
        out[row.user_id].append(Fact(row.delivered_at, int(row.spend_paise), frozenset(row.categories)))
    return out


_UNLOCK = text(
    "UPDATE loyalty_achievements a SET unlocked_at = v.at, progress = a.target, updated_at = now() "
    "FROM unnest(CAST(:rules AS text[]), CAST(:ats AS timestamptz[])) AS v(rule, at) "
    "WHERE a.user_id = :u AND a.rule = v.rule AND a.unlocked_at IS NULL RETURNING a.rule"
)


async def store(
    session: AsyncSession, *, user_id: uuid.UUID, rules: Sequence[Rule], facts: Sequence[Fact], push: bool
) -> list[str]:
    """Write the progress on these rules in one upsert, then unlock the reached ones in one
    UPDATE; the keys this call unlocked (two round trips whatever the number of rules)."""
    results = [(rule, achievements.evaluate(rule, facts)) for rule in rules]
    if not results:
        return []
    stmt = insert(Achievement).values(
        [{"user_id": user_id, "rule": r.key, "progress": p.value, "target": r.target} for r, p in results]
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["user_id", "rule"],
            set_={"progress": stmt.excluded.progress, "target": stmt.excluded.target},
            where=Achievement.unlocked_at.is_(None),
        )
    )
    reached = {r.key: (r, p.reached_at) for r, p in results if p.reached_at is not None}
    if not reached:
        return []
    flipped = set(
        (
            await session.scalars(
                _UNLOCK,
                {"u": user_id, "rules": list(reached), "ats": [at for _, at in reached.values()]},
            )
        ).all()
    )
    unlocked = [key for key in reached if key in flipped]  # in the rules' order
    if push:
        for key in unlocked:
            rule, at = reached[key]
            assert at is not None
            outbox.emit(
                session,
                topic=TOPIC,
                key=str(user_id),
                payload={
                    "user_id": str(user_id),
                    "rule": rule.key,
                    "title": rule.title,
                    "target": rule.target,
                    "unlocked_at": at.isoformat(),
                },
            )
    return unlocked


async def evaluate_user(session: AsyncSession, *, user_id: uuid.UUID) -> list[str]:
    """Bring every rule up to date for one customer; the keys unlocked by this call."""
    facts = (await facts_for(session, user_ids=[user_id]))[user_id]
    return await store(session, user_id=user_id, rules=achievements.RULES, facts=facts, push=True)


async def backfill(session: AsyncSession, *, rule: Rule, batch: int = 500) -> tuple[int, int]:
    """Evaluate one rule over every customer with delivered orders; (customers, unlocked).
    Unlock times are when the history reached the target; nothing is pushed for the past."""
    users = list(
        (
            await session.scalars(
                text("SELECT DISTINCT user_id FROM loyalty_order_points WHERE status = 'credited' ORDER BY 1")
            )
        ).all()
    )
    unlocked = 0
    for i in range(0, len(users), batch):
        chunk = users[i : i + batch]
        facts = await facts_for(session, user_ids=chunk)
        for user_id in chunk:
            done = await store(session, user_id=user_id, rules=[rule], facts=facts[user_id], push=False)
            unlocked += len(done)
    return len(users), unlocked


async def listing(session: AsyncSession, *, user_id: uuid.UUID) -> s.AchievementList:
    """Every rule with the customer's progress (0 for rules never evaluated)."""
    rows = {
        a.rule: a
        for a in (await session.scalars(select(Achievement).where(Achievement.user_id == user_id))).all()
    }
    items = []
    for rule in achievements.RULES:
        a = rows.get(rule.key)
        items.append(
            s.AchievementRead(
                rule=rule.key,
                title=rule.title,
                progress=a.progress if a else 0,
                target=rule.target,
                unlocked_at=a.unlocked_at if a else None,
            )
        )
    return s.AchievementList(items=items)
