"""Every reason the socket route counts a refusal under is one the metric exports from start-up."""

from __future__ import annotations

import inspect
import re

from kirana.api.realtime import metrics, router


def test_every_refusal_label_the_route_uses_is_pre_registered() -> None:
    source = inspect.getsource(router)
    used = set(re.findall(r'\(hub\.[A-Z_]+, [^()]*?, "([a-z-]+)"\)', source, re.S))
    assert used == {"draining", "credentials", "per-user-cap", "other"}
    assert used <= set(metrics.REFUSAL_REASONS)
