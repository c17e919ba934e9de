"""Demo data for `kirana run`: each domain registers an idempotent seeder here.

A seeder takes a SQLAlchemy connection inside a transaction and returns how many rows it
created; it must create nothing when its data is already there, so every start may call it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from sqlalchemy import Connection

Seeder = Callable[[Connection], int]

# "module:function" of each seeder, run in this order.
SEEDERS: tuple[str, ...] = ("kirana.api.accounts.seed:demo_accounts",)


def run_all(conn: Connection) -> dict[str, int]:
    created: dict[str, int] = {}
    for ref in SEEDERS:
        module, _, func = ref.partition(":")
        seeder: Seeder = getattr(importlib.import_module(module), func)
        created[ref] = seeder(conn)
    return created
