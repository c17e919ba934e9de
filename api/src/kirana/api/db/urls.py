"""Turn the one configured PostgreSQL URL into the driver-specific forms each tool needs."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url


def _base(url: str) -> URL:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql")


def async_url(url: str) -> URL:
    """For the API and workers (asyncpg)."""
    return _base(url).set(drivername="postgresql+asyncpg")


def sync_url(url: str) -> URL:
    """For Alembic and the CLI (psycopg 3)."""
    return _base(url).set(drivername="postgresql+psycopg")


def libpq_url(url: str, *, database: str | None = None) -> str:
    """For pg_dump, pg_restore and psql."""
    parsed = _base(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def database_name(url: str) -> str:
    name = make_url(url).database
    if not name:
        raise ValueError("the database URL names no database")
    return name
