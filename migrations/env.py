"""Alembic environment for Kirana; driven by `kirana db` (kirana.api.db.lifecycle).

The caller passes an open connection (holding the migration advisory lock) in
`config.attributes["connection"]`; offline mode (`--sql`) renders SQL for the safety check.
"""

from __future__ import annotations

from alembic import context

from kirana.api.db.base import Base, import_all_models

import_all_models()
target_metadata = Base.metadata
config = context.config


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `kirana db`, which provides a locked connection")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        transaction_per_migration=True,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
