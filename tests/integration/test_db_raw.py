"""Hot statements on the session's own asyncpg connection stay inside the session's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from kirana.api.db.engine import Database
from kirana.api.db.raw import Statement

TXID = Statement(text("SELECT pg_current_xact_id()::text AS xid, :tag AS tag"))
WRITE = Statement(text("INSERT INTO outbox_events (topic, key, payload) VALUES (:t, 'k', '{}')"))
COUNT = text("SELECT count(*) FROM outbox_events WHERE topic = :t")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=1, max_overflow=0)
    yield database
    await database.dispose()


async def test_raw_statements_share_the_sessions_transaction(db: Database) -> None:
    async with db.session() as session:
        first = (await TXID.fetch(session, {"tag": "a"}))[0]  # begins the transaction
        second = (await TXID.fetch(session, {"tag": "b"}))[0]  # runs raw, inside it
        through_orm = await session.scalar(text("SELECT pg_current_xact_id()::text"))
        assert (first["tag"], second["tag"]) == ("a", "b")
        assert first["xid"] == second["xid"] == through_orm
    async with db.session() as session:  # a new transaction, a new id
        assert (await TXID.fetch(session, {"tag": "c"}))[0]["xid"] != first["xid"]


async def test_a_rolled_back_session_takes_its_raw_writes_with_it(db: Database) -> None:
    async with db.session() as session:
        await session.execute(text("SELECT 1"))
        await WRITE.fetch(session, {"t": "raw.test"})  # raw, inside the transaction
        await session.rollback()
    async with db.session() as session:
        assert await session.scalar(COUNT, {"t": "raw.test"}) == 0


async def test_a_first_statement_without_rows_goes_through_sqlalchemy(database_url: str) -> None:
    db = Database(database_url, pool_size=1, max_overflow=0)
    write = Statement(text("INSERT INTO outbox_events (topic, key, payload) VALUES (:t, 'k', '{}')"))
    try:
        async with db.session() as session:
            assert await write.fetch(session, {"t": "first.test"}) == []  # begins the transaction
            assert (await TXID.fetch(session, {"tag": "x"}))[0]["xid"] == await session.scalar(
                text("SELECT pg_current_xact_id()::text")
            )
        async with db.session() as session:
            count = await session.scalar(
                text("SELECT count(*) FROM outbox_events WHERE topic = 'first.test'")
            )
        assert count == 1
    finally:
        await db.dispose()


INSERT_ONE = Statement(
    text("INSERT INTO outbox_events (topic, key, payload) VALUES (:t, 'k', '{}') RETURNING topic")
)
BACKENDS = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kirana-hot-test'")


async def test_a_statement_alone_commits_on_the_hot_pool_which_opens_on_first_use(
    database_url: str,
) -> None:
    from kirana.api import metrics

    db = Database(
        database_url, pool_size=1, max_overflow=0, application_name="kirana-hot-test", hot_pool_size=2
    )
    limit_before = metrics.DB_POOL_LIMIT._value.get()
    try:
        async with db.session() as session:
            assert await session.scalar(BACKENDS) == 1  # the session's own connection only
        assert await INSERT_ONE.fetchval_alone(db, {"t": "hot.test"}) == "hot.test"
        assert metrics.DB_POOL_LIMIT._value.get() == limit_before + 2
        async with db.session() as session:  # committed: another connection sees it
            assert await session.scalar(COUNT, {"t": "hot.test"}) == 1
            assert await session.scalar(BACKENDS) == 2  # the hot pool holds one, min_size
    finally:
        await db.dispose()
    assert metrics.DB_POOL_LIMIT._value.get() == limit_before - 1  # both pools gone (1 + 0 + 2)


async def test_the_hot_pool_keeps_no_state_between_statements(db: Database) -> None:
    # Releases skip asyncpg's reset round trip; a statement that fails leaves nothing behind
    # for the next one on that connection.
    failing = Statement(text("SELECT 1 / (CAST(:n AS int) - CAST(:n AS int))"))
    with pytest.raises(Exception, match="division by zero"):
        await failing.fetchval_alone(db, {"n": 1})
    assert await Statement(text("SELECT CAST(:x AS int) + 1")).fetchval_alone(db, {"x": 1}) == 2
    async with db.session() as session:  # no hot connection sits in an open transaction
        idle_in_tx = "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'"
        assert await session.scalar(text(idle_in_tx)) == 0
