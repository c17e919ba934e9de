"""Pass/fail limits of a load run, read from a TOML file (tests/load/thresholds.toml by default).

The locustfile checks them when the run ends and sets Locust's exit code to 1 on any breach;
`check` is pure so the rules are unit-tested without a run. The file:

    [total]                     # the whole run
    max_error_ratio = 0.001
    [default]                   # every journey step not named below
    p95_ms = 500
    max_error_ratio = 0.01
    [step."checkout"]           # one step (the request name the locustfile gives it)
    p95_ms = 800
    min_requests = 1            # a step that never ran is a breach too
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_FILE = Path(__file__).with_name("thresholds.toml")


@dataclass(frozen=True)
class Row:
    """What the run measured for one step (or `total`)."""

    name: str
    requests: int
    failures: int
    p95_ms: float

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Limit:
    p95_ms: float | None = None
    max_error_ratio: float | None = None
    min_requests: int = 0


def _limit(table: dict[str, Any], base: Limit = Limit()) -> Limit:
    unknown = set(table) - {"p95_ms", "max_error_ratio", "min_requests"}
    if unknown:
        raise ValueError(f"unknown threshold keys: {', '.join(sorted(unknown))}")
    return Limit(
        p95_ms=table.get("p95_ms", base.p95_ms),
        max_error_ratio=table.get("max_error_ratio", base.max_error_ratio),
        min_requests=table.get("min_requests", base.min_requests),
    )


@dataclass(frozen=True)
class Config:
    total: Limit
    default: Limit
    steps: dict[str, Limit]


def load(path: Path = DEFAULT_FILE) -> Config:
    """The limits in `path`; a step's table inherits what it does not set from `[default]`."""
    data = tomllib.loads(path.read_text())
    default = _limit(data.get("default", {}))
    return Config(
        total=_limit(data.get("total", {})),
        default=default,
        steps={name: _limit(t, default) for name, t in data.get("step", {}).items()},
    )


def _breaches(row: Row, limit: Limit) -> list[str]:
    out = []
    if row.requests < limit.min_requests:
        out.append(f"{row.name}: {row.requests} requests, expected at least {limit.min_requests}")
    if limit.p95_ms is not None and row.requests and row.p95_ms > limit.p95_ms:
        out.append(f"{row.name}: p95 {row.p95_ms:.0f} ms > {limit.p95_ms:g} ms")
    if limit.max_error_ratio is not None and row.error_ratio > limit.max_error_ratio:
        out.append(
            f"{row.name}: error ratio {row.error_ratio:.4f} ({row.failures}/{row.requests})"
            f" > {limit.max_error_ratio:g}"
        )
    return out


def check(config: Config, steps: list[Row], total: Row) -> list[str]:
    """Every breach, one line each (empty: the run passes). Steps named in the config that never
    ran are checked as zero requests, so `min_requests` catches a journey that broke early."""
    seen = {row.name for row in steps}
    rows = steps + [Row(name, 0, 0, 0.0) for name in config.steps if name not in seen]
    out = _breaches(total, config.total)
    for row in rows:
        out += _breaches(row, config.steps.get(row.name, config.default))
    return out
