"""The operator's settings, read once from the environment at start-up, and the runtime it keeps.

Called by `kirana.operator.handlers.configure` (kopf's startup handler), which stores one
`Runtime` in kopf's memo. A bad value stops the operator with one line per bad variable
(`ConfigError`), rather than a traceback from a bare `int()` or a silent default.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields

from kirana.operator.kube import Kube

PREFIX = "KIRANA_OPERATOR_"


class ConfigError(ValueError):
    """One or more environment variables hold a value the operator cannot use."""


@dataclass(frozen=True)
class OperatorConfig:
    #: Seconds after which the API server ends a watch stream (the client gives up 30 s later), so
    #: a silently dead connection is replaced within minutes instead of hanging forever.
    watch_server_timeout: int = 270
    #: Seconds a peering record lives: a replica that stops refreshing it for this long is gone.
    peering_lifetime: int = 60
    #: Port of the Prometheus /metrics endpoint (0: choose a free one).
    metrics_port: int = 8080
    #: Threads that run reconciles: reconciles are short, and every extra thread costs a malloc arena.
    reconcile_threads: int = 4

    def __post_init__(self) -> None:
        problems = [
            f"{PREFIX}{f.name.upper()}={getattr(self, f.name)}: {why}"
            for f in fields(self)
            if (why := _out_of_range(f.name, getattr(self, f.name)))
        ]
        if problems:
            raise ConfigError("; ".join(problems))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OperatorConfig:
        """The settings the `KIRANA_OPERATOR_*` variables give (defaults for those unset)."""
        values: dict[str, int] = {}
        problems: list[str] = []
        for f in fields(cls):
            var = PREFIX + f.name.upper()
            raw = environ.get(var)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[f.name] = int(raw)
            except ValueError:
                problems.append(f"{var}={raw!r}: not a whole number")
                continue
            why = _out_of_range(f.name, values[f.name])
            if why:
                problems.append(f"{var}={raw}: {why}")
        if problems:
            raise ConfigError("\n".join(problems))
        return cls(**values)


_RANGES = {
    "watch_server_timeout": (10, 3600),
    "peering_lifetime": (5, 3600),
    "metrics_port": (0, 65535),
    "reconcile_threads": (1, 64),
}


def _out_of_range(name: str, value: int) -> str:
    low, high = _RANGES[name]
    return "" if low <= value <= high else f"must be between {low} and {high}"


@dataclass
class Runtime:
    """What the handlers share, kept in kopf's memo under `runtime`."""

    config: OperatorConfig
    kube: Kube
    executor: ThreadPoolExecutor
    # One wake-up event per object with a running daemon, by uid.
    wakeups: dict[str, asyncio.Event] = field(default_factory=dict)
