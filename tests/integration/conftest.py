"""Real PostgreSQL and Redis for integration tests.

Each pytest-xdist worker starts its own embedded servers (or uses `KIRANA_TEST_DATABASE_URL` /
`KIRANA_TEST_REDIS_URL`). The schema is migrated once into a template database; every test gets
its own database cloned from it, so tests may commit, run concurrent transactions, and still
never see each other's data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from redis import Redis
from sqlalchemy.engine import make_url

from kirana.api.app import create_app
from kirana.api.db.lifecycle import Lifecycle
from kirana.api.devstack import EmbeddedPostgres, EmbeddedRedis
from kirana.api.settings import Settings


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL to the maintenance database of a real PostgreSQL server."""
    external = os.environ.get("KIRANA_TEST_DATABASE_URL")
    if external:
        yield make_url(external).set(database="postgres").render_as_string(hide_password=False)
        return
    # Not under pytest's temp dir: another pytest session resets its parent to mode 0700, which
    # locks out the PostgreSQL server (it runs as its own user when tests run as root).
    data = Path(tempfile.mkdtemp(prefix="kirana-test-pg-"))
    server = EmbeddedPostgres(data, durable=False)
    server.start()
    try:
        yield server.admin_url
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KIRANA_TEST_REDIS_URL")
    if external:
        yield external
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), durable=False)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _url_for(admin_url: str, database: str) -> str:
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    return _url_for(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def template_database(pg_admin_url: str) -> Iterator[str]:
    """A database migrated to head, cloned by each test."""
    name = f"kirana_tpl_{_worker()}"
    url = create_database(pg_admin_url, name)
    Lifecycle(url).migrate()
    # The stores the tests' orders and staff scopes name, besides the migration's `main`.
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO stores (code, name) VALUES ('blr-1', 'Bengaluru 1'), ('blr-2', 'Bengaluru 2')"
        )
    yield name
    drop_database(pg_admin_url, name)


@pytest.fixture
def empty_database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database with no schema at all."""
    name = f"kirana_t_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_admin_url, name)
    yield url
    drop_database(pg_admin_url, name)


@pytest.fixture
def database_url(pg_admin_url: str, template_database: str) -> Iterator[str]:
    """A private database at the head revision for this test."""
    name = f"kirana_t_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_admin_url, name, template=template_database)
    yield url
    drop_database(pg_admin_url, name)


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    client = Redis.from_url(redis_server_url)
    client.flushdb()
    client.close()
    yield redis_server_url


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path,
        drain_seconds=0,
        log_json=False,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, handle_signals=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://kirana.test") as c:
        yield c
