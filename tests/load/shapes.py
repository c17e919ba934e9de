"""Staged load shapes as pure tables: which user count and spawn rate hold at each second.

`locustfile.StagedShape` (a Locust `LoadTestShape`) asks `at(plan, t)` every second; the plan
comes from `plan(name, users=..., duration_s=...)`. Kept free of Locust so unit tests can walk
the stages without a run.
"""

from __future__ import annotations

from dataclasses import dataclass

SHAPES = ("smoke", "ramp", "steady", "spike")


@dataclass(frozen=True)
class Stage:
    """Until `end_s` seconds into the run, hold `users` users, starting them at `spawn_rate`/s."""

    end_s: float
    users: int
    spawn_rate: float


def plan(name: str, *, users: int, duration_s: float) -> tuple[Stage, ...]:
    """The stages of shape `name` for a peak of `users` over `duration_s` seconds.

    smoke: the users at once, held; ramp: up in four equal steps, then held for the last fifth;
    steady: a short ramp (a tenth) then held; spike: a fifth of the users, a burst to all of
    them in the middle fifth, then back down to a fifth.
    """
    if users < 1 or duration_s <= 0:
        raise ValueError("users must be >= 1 and duration > 0")
    d, u = float(duration_s), users
    fast = float(max(u, 1))  # everyone within a second
    if name == "smoke":
        return (Stage(d, u, fast),)
    if name == "ramp":
        step = d * 0.8 / 4
        return tuple(
            Stage(step * (i + 1), max(1, round(u * (i + 1) / 4)), max(1.0, u / 4 / step)) for i in range(4)
        ) + (Stage(d, u, fast),)
    if name == "steady":
        warm = max(d * 0.1, 1.0)
        return (Stage(warm, u, max(1.0, u / warm)), Stage(d, u, fast))
    if name == "spike":
        base = max(1, u // 5)
        return (Stage(d * 0.4, base, fast), Stage(d * 0.6, u, fast), Stage(d, base, fast))
    raise ValueError(f"unknown shape {name!r}; one of {', '.join(SHAPES)}")


def at(stages: tuple[Stage, ...], t: float) -> tuple[int, float] | None:
    """(users, spawn rate) at `t` seconds, or None once the last stage is over (the run stops)."""
    for stage in stages:
        if t < stage.end_s:
            return stage.users, stage.spawn_rate
    return None
