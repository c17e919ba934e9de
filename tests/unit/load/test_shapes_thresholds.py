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
        ("load", {0: 10, 11.9: 10, 12: 10, 59.9: 10, 60: None}),
        ("spike", {0: 2, 23.9: 2, 24: 10, 35.9: 10, 36: 2, 59: 2, 60: None}),
    ],
)
def test_each_shape_holds_its_users_and_stops_at_the_end(name: str, ticks: dict[float, int | None]) -> None:
    plan = shapes.plan(name, users=10, duration_s=60)
    for t, users in ticks.items():
        got = shapes.at(plan, t)
        assert (got[0] if got else None) == users, (name, t)


def test_the_load_shape_ramps_over_the_first_fifth_then_holds() -> None:
    ramp, held = shapes.plan("load", users=50, duration_s=600)
    assert (ramp.end_s, ramp.users, ramp.spawn_rate) == (120, 50, 50 / 120)
    assert (held.end_s, held.users) == (600, 50)


def test_unknown_shape_and_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown shape"):
        shapes.plan("marathon", users=1, duration_s=1)
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


def test_stress_climbs_in_ten_steps_and_soak_holds_after_a_short_ramp() -> None:
    stress = shapes.plan("stress", users=50, duration_s=100)
    assert [s.users for s in stress] == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert [s.end_s for s in stress][:2] == [10, 20] and stress[-1].end_s == 100
    ramp, held = shapes.plan("soak", users=50, duration_s=shapes.SOAK_DEFAULT_S)
    assert (ramp.end_s, held.end_s, held.users) == (60, 1800, 50)


def _snap(requests: int, failures: int, times: dict[int, int]) -> shapes.Snapshot:
    return shapes.Snapshot(requests, failures, times)


def test_a_window_between_snapshots_has_its_own_counts_and_p95() -> None:
    before = _snap(100, 1, {10: 100})
    after = _snap(200, 3, {10: 150, 900: 50})  # the 100 new requests: 50 at 10 ms, 50 at 900 ms
    w = shapes.window(before, after)
    assert (w.requests, w.failures, w.p95_ms) == (100, 2, 900)
    assert shapes.percentile({}, 0.95) == 0.0
    assert shapes.percentile({5: 95, 700: 5}, 0.95) == 5


def test_stress_stops_at_the_first_step_that_breaks_and_says_where() -> None:
    stages = shapes.plan("stress", users=20, duration_s=40)  # 2, 4, ..., 20 users, 4 s each
    stress = shapes.Stress(stages, max_error_ratio=0.01, p95_ms=500)
    assert stress.tick(0, _snap(0, 0, {})) == (2, 20.0)
    assert stress.tick(3, _snap(50, 0, {20: 50})) == (2, 20.0)
    assert stress.tick(4, _snap(100, 0, {20: 100})) == (4, 20.0)  # step 1 held
    assert stress.tick(8, _snap(200, 0, {20: 150, 600: 50})) is None  # step 2: p95 600 ms
    result = stress.result()
    assert result["broke"] is True and result["step"] == 2 and result["users"] == 4
    assert result["held_users"] == 2 and result["reason"] == "p95 600 ms > 500 ms"
    assert stress.tick(9, _snap(200, 0, {})) is None  # stays stopped


def test_stress_breaks_on_errors_and_reports_a_run_that_held_to_the_end() -> None:
    stages = shapes.plan("stress", users=10, duration_s=20)
    errors = shapes.Stress(stages, max_error_ratio=0.01, p95_ms=500)
    errors.tick(0, _snap(0, 0, {}))
    assert errors.tick(2, _snap(100, 5, {10: 100})) is None
    assert str(errors.result()["reason"]).startswith("error ratio 0.0500 (5/100)")
    held = shapes.Stress(stages, max_error_ratio=0.01, p95_ms=500)
    for i in range(11):
        held.tick(i * 2, _snap(100 * i, 0, {10: 100 * i}))
    assert held.result() == {"broke": False, "held_users": 10, "steps": 10}
