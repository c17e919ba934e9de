"""Shared helpers of the monitoring tests: where `monitoring/` is, its rules parsed, the pinned tools.

The tools (promtool, amtool, prometheus, alertmanager) come from `make tools` into `.local/bin`;
a missing tool fails the test with that instruction instead of skipping it.
"""

from __future__ import annotations

import glob
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
BIN = REPO / ".local" / "bin"
CATEGORIES = ("api", "database", "cache", "infrastructure", "business", "availability", "external", "backup")


@dataclass(frozen=True)
class Rule:
    file: Path
    group: str
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.body.get("alert") or self.body["record"])


def load_rules() -> list[Rule]:
    rules = []
    for path in sorted(MONITORING.glob("rules/*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [Rule(path, group["name"], r) for r in group["rules"]]
    return rules


def alerts() -> list[Rule]:
    return [r for r in load_rules() if "alert" in r.body]


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make tools`")
    return str(path)


def run(*args: str, cwd: Path = MONITORING, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def rule_test_files() -> list[str]:
    return sorted(glob.glob(str(MONITORING / "tests" / "*_test.yaml")))
