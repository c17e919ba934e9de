"""Staged load shapes as pure tables: which user count and spawn rate hold at each second.

`locustfile.StagedShape` (a Locust `LoadTestShape`) asks `at(plan, t)` every second; the plan
comes from `plan(name, users=..., duration_s=...)`. Kept free of Locust so unit tests can walk
the stages without a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tests.load.thresholds import Row

SHAPES = ("smoke", "ramp", "steady", "spike", "load", "stress", "soak")
STRESS_STEPS = 10
SOAK_DEFAULT_S = 1800.0  # `make load SHAPE=soak` without DURATION: 30 minutes


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
    them in the middle fifth, then back down to a fifth; load: the seed's run (50 users by
    default in `make load`'s docs) ramped up over the first fifth, then held; stress: up in ten
    equal steps to `users` (the run stops at the first step that breaks, see `Stress`); soak:
    a ramp over the first 5 % (at most a minute), then held (memory is watched meanwhile).
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
    if name == "load":
        warm = max(d * 0.2, 1.0)
        return (Stage(warm, u, u / warm), Stage(d, u, fast))  # an even ramp, however slow
    if name == "stress":
        step = d / STRESS_STEPS
        return tuple(
            Stage(step * (i + 1), max(1, round(u * (i + 1) / STRESS_STEPS)), fast)
            for i in range(STRESS_STEPS)
        )
    if name == "soak":
        warm = min(max(d * 0.05, 1.0), 60.0)
        return (Stage(warm, u, u / warm), Stage(d, u, fast))
    raise ValueError(f"unknown shape {name!r}; one of {', '.join(SHAPES)}")


def at(stages: tuple[Stage, ...], t: float) -> tuple[int, float] | None:
    """(users, spawn rate) at `t` seconds, or None once the last stage is over (the run stops)."""
    for stage in stages:
        if t < stage.end_s:
            return stage.users, stage.spawn_rate
    return None


def stage_index(stages: tuple[Stage, ...], t: float) -> int | None:
    """Which stage holds at `t` (None after the last)."""
    return next((i for i, stage in enumerate(stages) if t < stage.end_s), None)


@dataclass(frozen=True)
class Snapshot:
    """The whole run's counters at one moment: requests, failures and the response-time
    histogram (rounded ms -> count, as Locust's `StatsEntry.response_times` keeps it)."""

    requests: int
    failures: int
    times: dict[int, int]


def percentile(hist: dict[int, int], q: float) -> float:
    total = sum(hist.values())
    if total <= 0:
        return 0.0
    rank, seen = math.ceil(q * total), 0
    for ms in sorted(hist):
        seen += hist[ms]
        if seen >= rank:
            return float(ms)
    return float(max(hist))


# What happened in one stretch of the run: a thresholds row named "window".
Window = Row


def window(before: Snapshot, after: Snapshot) -> Window:
    """What happened between two snapshots."""
    hist = {ms: n - before.times.get(ms, 0) for ms, n in after.times.items()}
    return Window(
        "window",
        after.requests - before.requests,
        after.failures - before.failures,
        percentile({ms: n for ms, n in hist.items() if n > 0}, 0.95),
    )


@dataclass
class Stress:
    """Judges each step of a stress run as it ends: the first whose error ratio or p95 is over
    the limits is where the shop broke (`broke_at`), and the run stops there."""

    stages: tuple[Stage, ...]
    max_error_ratio: float
    p95_ms: float
    min_requests: int = 10
    step: int = 0
    started: Snapshot | None = None
    broke_at: dict[str, object] | None = None
    held: int = 0  # users of the last step that held

    def verdict(self, w: Window) -> str | None:
        if w.requests < self.min_requests:  # too little to judge (a first step still warming up)
            return None
        if w.error_ratio > self.max_error_ratio:
            return f"error ratio {w.error_ratio:.4f} ({w.failures}/{w.requests}) > {self.max_error_ratio:g}"
        if w.p95_ms > self.p95_ms:
            return f"p95 {w.p95_ms:.0f} ms > {self.p95_ms:g} ms"
        return None

    def tick(self, t: float, now: Snapshot) -> tuple[int, float] | None:
        """(users, spawn rate) for `t`, or None: the last step is over or a step broke."""
        if self.broke_at is not None:
            return None
        index = stage_index(self.stages, t)
        if self.started is None:
            self.started = now
        if index != self.step:  # the step that was running has ended: judge it
            stage = self.stages[self.step]
            w = window(self.started, now)
            reason = self.verdict(w)
            if reason is not None:
                self.broke_at = {
                    "step": self.step + 1,
                    "users": stage.users,
                    "reason": reason,
                    "requests": w.requests,
                    "failures": w.failures,
                    "p95_ms": w.p95_ms,
                    "held_users": self.held,
                }
                return None
            self.held = stage.users
            if index is None:
                return None
            self.step, self.started = index, now
        return self.stages[self.step].users, self.stages[self.step].spawn_rate

    def result(self) -> dict[str, object]:
        if self.broke_at is not None:
            return {"broke": True, **self.broke_at}
        return {"broke": False, "held_users": self.held, "steps": len(self.stages)}
