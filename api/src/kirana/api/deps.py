"""FastAPI dependencies shared by every router: settings, database session, Redis.

All are `async def`: FastAPI runs a plain `def` dependency in a worker thread, a hop that costs
more than the lookup itself on every request.

Routes use the Annotated aliases (`SessionDep`, `RedisDep`, `SettingsDep`) so signatures stay short.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.db.engine import Database
from kirana.api.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_redis(request: Request) -> Redis:
    client: Redis = request.app.state.redis
    return client


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back on error."""
    db: Database = request.app.state.db
    async with db.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
RedisDep = Annotated[Redis, Depends(get_redis)]
# scope="function": the transaction commits before the response is sent, so a failed commit
# can never follow a success answer.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
