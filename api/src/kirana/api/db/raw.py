"""Hot statements in asyncpg's `$n` form: on the session's own connection, inside its
transaction (`fetch`), or alone on `Database.hot`, each its own transaction (`*_alone`).

For the few statements on the busiest write path (order placement and its idempotency key):
SQLAlchemy's per-call work (parameter processing, cursor adaptation, result wrapping) costs
about as much as the round trip itself. `Statement` compiles a `text()` statement once to
asyncpg's `$n` form and runs it on the very connection, and therefore in the very transaction,
that the `AsyncSession` holds; asyncpg prepares it once per connection. The first statement of
a transaction still goes through SQLAlchemy, which is what begins the transaction.

Rows are asyncpg records. Pass JSON parameters as text and cast them in SQL. On a session's
connection JSON and JSONB values arrive decoded (SQLAlchemy installs its JSON codecs there); on
the hot pool, which has no codecs, they arrive as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import TextClause
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.db.engine import Database


class Statement:
    def __init__(self, statement: TextClause) -> None:
        self.clause = statement
        compiled = statement.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())

    async def fetch(self, session: AsyncSession, params: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        """Run in the session's transaction; the rows, each a mapping of column to value.

        SQLAlchemy begins the database transaction only with the first statement it sends
        itself, so a statement that would be the first goes through SQLAlchemy (a raw one would
        run outside any transaction and release its locks at once)."""
        conn = await session.connection()
        driver = (await conn.get_raw_connection()).driver_connection
        if driver is None or not driver.is_in_transaction():
            result = await session.execute(self.clause, params)
            if not result.returns_rows:  # type: ignore[attr-defined]
                return []
            return [dict(row._mapping) for row in result]
        rows: Sequence[Mapping[str, Any]] = await driver.fetch(self.sql, *(params[n] for n in self.names))
        return rows

    async def fetch_alone(self, db: Database, params: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        """Run as its own transaction on `Database.hot` (a read that needs no session); the rows."""
        pool = await db.hot()
        rows: Sequence[Mapping[str, Any]] = await pool.fetch(self.sql, *(params[n] for n in self.names))
        return rows

    async def fetchval_alone(self, db: Database, params: Mapping[str, Any]) -> Any:
        """Run as its own transaction (one round trip) on the database's plain asyncpg pool
        (`Database.hot`), for a statement that is atomic alone. The first column of the first row."""
        pool = await db.hot()
        return await pool.fetchval(self.sql, *(params[n] for n in self.names))
