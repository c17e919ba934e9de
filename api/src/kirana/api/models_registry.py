"""The list of modules that define ORM models; imported by migrations and the drift check."""

from __future__ import annotations

import importlib

MODEL_MODULES: tuple[str, ...] = (
    "kirana.api.outbox.models",
    "kirana.api.accounts.models",
    "kirana.api.access.models",
    "kirana.api.twofactor.models",
    "kirana.api.audit.models",
    "kirana.api.catalog.models",
    "kirana.api.cart.models",
    "kirana.api.orders.models",
    "kirana.api.idempotency.models",
    "kirana.api.sync.models",
    "kirana.api.payments.models",
    "kirana.api.search.models",
    "kirana.api.loyalty.models",
    "kirana.api.stores.models",
    "kirana.api.delivery.models",
)


def load() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
