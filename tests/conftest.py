"""Shared pytest configuration: markers are applied by folder."""

from __future__ import annotations

import pytest

from tests.bench.harness import uncap_orders

uncap_orders()  # many tests place many unpaid orders per account; the caps have their own test


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.path)
        if "/tests/integration/" in path:
            item.add_marker(pytest.mark.integration)
        elif "/tests/e2e/" in path:
            item.add_marker(pytest.mark.e2e)
