"""Every topic the code writes to the outbox is declared in `kirana.api.outbox.topics`, which is
what a worker of this build relays and acknowledges (an undeclared topic would wait forever)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import kirana.api
from kirana.api.outbox import service as outbox
from kirana.api.outbox.topics import TOPICS
from kirana.api.realtime.channels import ROUTES
from kirana.workers.consumers import HANDLERS

SRC = Path(kirana.api.__file__).parent
EMITTERS = {"emit", "emit_result", "_event"}  # outbox.emit and the domains' wrappers around it


def _written_topics() -> dict[str, str]:
    """topic -> where: module constants named *TOPIC, string literals handed to an emitter and
    the topics SQL inserts into outbox_events."""
    found: dict[str, str] = {}
    for path in SRC.rglob("*.py"):
        if path.is_relative_to(SRC / "devrazorpay"):
            continue  # the fake Razorpay's webhook events, not the shop's outbox
        tree = ast.parse(path.read_text())
        where = str(path.relative_to(SRC))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id.endswith("TOPIC"):
                        found[str(node.value.value)] = where
            if isinstance(node, ast.Call):
                name = (
                    node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                )
                if name not in EMITTERS:
                    continue
                args = [*node.args, *(k.value for k in node.keywords if k.arg == "topic")]
                for arg in args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and "." in arg.value:
                        found[arg.value] = where
        for topic in re.findall(
            r"INSERT INTO outbox_events[^;]*?SELECT '([a-z_.]+)'", path.read_text(), re.S
        ):
            found[topic] = where
    return found


def test_every_topic_written_is_declared() -> None:
    written = _written_topics()
    assert {"order.placed", "delivery.position", "payment.succeeded", "account.signup_requested"} <= set(
        written
    )
    assert {t: w for t, w in written.items() if t not in TOPICS} == {}


def test_routes_and_handlers_name_declared_topics() -> None:
    assert set(ROUTES) - TOPICS == set()
    assert set(HANDLERS) - TOPICS == set()


def test_emitting_an_undeclared_topic_is_refused() -> None:
    with pytest.raises(ValueError, match="not declared"):
        outbox.emit(None, topic="order.teleported", key="k", payload={})  # type: ignore[arg-type]
