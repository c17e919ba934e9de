"""Pure geometry of a delivery: distances, the ETA, and whether a new position is believable.

No I/O; the delivery service calls these on every position and the unit tests table-test them.
The ETA is the great-circle distance to the drop point, stretched by `ROAD_FACTOR` (streets are
not straight lines), at the configured average speed (`KIRANA_DELIVERY_SPEED_KMH`), plus a
fixed hand-over time. Good enough to say "about 12 minutes"; a routing engine would do better.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

EARTH_RADIUS_M = 6_371_008.8
ROAD_FACTOR = 1.35
HANDOVER_S = 60.0
MAX_SPEED_MPS = 55.0  # ~200 km/h: anything faster between two fixes is a GPS glitch
ETA_STEP_S = 60.0  # an ETA that moved less than this is not announced again


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def eta(
    *, lat: float, lng: float, dest_lat: float, dest_lng: float, at: datetime, speed_kmh: float
) -> datetime:
    """When an agent at (lat, lng) at `at` should reach the drop point."""
    metres = distance_m(lat, lng, dest_lat, dest_lng) * ROAD_FACTOR
    return at + timedelta(seconds=metres / (speed_kmh / 3.6) + HANDOVER_S)


def worth_announcing(previous: datetime | None, new: datetime) -> bool:
    """A first ETA, or one that moved by a minute or more."""
    return previous is None or abs((new - previous).total_seconds()) >= ETA_STEP_S


def believable(*, prev: tuple[float, float, datetime] | None, lat: float, lng: float, at: datetime) -> bool:
    """False when reaching (lat, lng) at `at` from the previous fix needs an impossible speed."""
    if prev is None:
        return True
    plat, plng, pat = prev
    seconds = (at - pat).total_seconds()
    metres = distance_m(plat, plng, lat, lng)
    if seconds <= 0:
        return metres < 50  # the same instant (or an older fix sent late): only a small wobble
    return metres / seconds <= MAX_SPEED_MPS or metres < 50
