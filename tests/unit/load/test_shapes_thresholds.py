"""The load kit's pure parts: the stages of each shape and the threshold rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.load import shapes, thresholds
from tests.load.thresholds import Config, Limit, Row


@pytest.mark.parametrize(
    ("name", "ticks"),
    [
        ("smoke", {0: 10, 59.9: 10, 60: None}),
        ("ramp", {0: 2, 12: 5, 24: 8, 36: 10, 50: 10, 60: None}),  # four steps over 48 s, then held
        ("steady", {0: 10, 30: 10, 60: None}),
        ("spike", {0: 2, 23.9: 2, 24: 10, 35.9: 10, 36: 2, 59: 2, 60: None}),
    ],
)
def test_each_shape_holds_its_users_and_stops_at_the_end(name: str, ticks: dict[float, int | None]) -> None:
    plan = shapes.plan(name, users=10, duration_s=60)
    for t, users in ticks.items():
        got = shapes.at(plan, t)
        assert (got[0] if got else None) == users, (name, t)


def test_unknown_shape_and_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown shape"):
        shapes.plan("soak", users=1, duration_s=1)
    with pytest.raises(ValueError):
        shapes.plan("smoke", users=0, duration_s=1)


CONFIG = Config(
    total=Limit(max_error_ratio=0.001),
    default=Limit(p95_ms=500, max_error_ratio=0.01),
    steps={"checkout": Limit(p95_ms=800, max_error_ratio=0.01, min_requests=1)},
)


@pytest.mark.parametrize(
    ("steps", "total", "breaches"),
    [
        ([Row("browse: listing", 100, 0, 499)], Row("total", 100, 0, 499), ["checkout: 0 requests"]),
        ([Row("checkout", 10, 0, 799)], Row("total", 10, 0, 799), []),
        ([Row("checkout", 10, 0, 801)], Row("total", 10, 0, 801), ["checkout: p95 801 ms > 800 ms"]),
        (
            [Row("checkout", 10, 0, 1), Row("x", 10, 0, 501)],
            Row("total", 20, 0, 9),
            ["x: p95 501 ms > 500 ms"],
        ),
        (
            [Row("checkout", 1000, 2, 1)],
            Row("total", 1000, 2, 1),
            ["total: error ratio 0.0020 (2/1000) > 0.001"],
        ),
        (
            [Row("checkout", 50, 1, 1)],
            Row("total", 5000, 1, 1),
            ["checkout: error ratio 0.0200 (1/50) > 0.01"],
        ),
    ],
)
def test_threshold_breaches(steps: list[Row], total: Row, breaches: list[str]) -> None:
    found = thresholds.check(CONFIG, steps, total)
    assert [b[: len(want)] for b, want in zip(found, breaches, strict=False)] == breaches
    assert len(found) == len(breaches)


def test_the_shipped_file_loads_and_steps_inherit_the_default(tmp_path: Path) -> None:
    shipped = thresholds.load()
    assert shipped.total.max_error_ratio == 0.001  # the seed's "error rate < 0.1%"
    assert shipped.steps["checkout"].max_error_ratio == shipped.default.max_error_ratio
    bad = tmp_path / "t.toml"
    bad.write_text('[step."x"]\np95 = 1\n')
    with pytest.raises(ValueError, match="unknown threshold keys: p95"):
        thresholds.load(bad)
