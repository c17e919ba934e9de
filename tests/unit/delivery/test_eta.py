"""Pure delivery geometry: distances, ETAs, when an ETA is worth announcing, believable fixes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kirana.api.delivery import eta

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
BLR = (12.9716, 77.5946)
MYSORE = (12.2958, 76.6394)


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        (BLR, BLR, 0.0),
        (BLR, MYSORE, 128.0),
        ((0.0, 179.9), (0.0, -179.9), 22.2),
        ((90.0, 0.0), (-90.0, 0.0), 20015.1),
    ],
)
def test_distance(a: tuple[float, float], b: tuple[float, float], km: float) -> None:
    assert eta.distance_m(*a, *b) / 1000 == pytest.approx(km, abs=0.5)


def test_eta_grows_with_distance_and_includes_the_handover() -> None:
    here = eta.eta(lat=BLR[0], lng=BLR[1], dest_lat=BLR[0], dest_lng=BLR[1], at=T0, speed_kmh=18)
    assert here == T0 + timedelta(seconds=eta.HANDOVER_S)
    three_km_north = BLR[0] + 3000 / 111_195
    far = eta.eta(lat=three_km_north, lng=BLR[1], dest_lat=BLR[0], dest_lng=BLR[1], at=T0, speed_kmh=18)
    assert (far - T0).total_seconds() == pytest.approx(3000 * eta.ROAD_FACTOR / 5 + eta.HANDOVER_S, rel=0.01)


@pytest.mark.parametrize(
    ("previous", "new", "announce"),
    [
        (None, T0, True),
        (T0, T0 + timedelta(seconds=59), False),
        (T0, T0 - timedelta(seconds=60), True),
        (T0, T0 + timedelta(minutes=5), True),
    ],
)
def test_worth_announcing(previous: datetime | None, new: datetime, announce: bool) -> None:
    assert eta.worth_announcing(previous, new) is announce


@pytest.mark.parametrize(
    ("metres_north", "seconds", "ok"),
    [
        (0, 1, True),
        (20, 1, True),  # a bike at 72 km/h... briefly
        (30, 0, True),  # the same instant, GPS wobble
        (500, 0, False),
        (100, 1, False),  # 360 km/h
        (5000, 60, False),
        (5000, 600, True),
    ],
)
def test_believable(metres_north: float, seconds: float, ok: bool) -> None:
    prev = (BLR[0], BLR[1], T0)
    lat = BLR[0] + metres_north / 111_195
    assert eta.believable(prev=prev, lat=lat, lng=BLR[1], at=T0 + timedelta(seconds=seconds)) is ok
    assert eta.believable(prev=None, lat=lat, lng=BLR[1], at=T0)
