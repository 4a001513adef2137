"""Two clocks: the simulated one that drives the shoppers, and the one stamped on the wire.

The simulated clock starts at ``start_time_ms`` (default: now) and runs ``speed`` times faster than
real time. It decides the time of day, so the day curve, shopper arrivals, restocks and rare fridge
excursions follow it.

Timestamps on the wire (``ts``) follow the simulated clock only when ``speed == 1``. At any other
speed they follow the real wall clock, because the daemon rejects ``ts`` more than 5 minutes in the
future and judges durations (a fridge out of range for how long, a sensor silent for how long) by
``ts``: a 60x run stamped with simulated time would be hours ahead after a few real minutes. Device
physics (load-cell noise and drift, fridge door-open spikes and their recovery) therefore also runs in
real seconds: a door spike "lasting tens of seconds" lasts tens of seconds of ``ts``. The wall clock is
read once at start and advanced with the monotonic clock, so ``ts`` never goes backwards if the host
clock is stepped.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000


@dataclass(frozen=True, slots=True)
class SimClock:
    """Maps real seconds elapsed since the run started to simulated time and to wire ``ts``."""

    sim_start_ms: int
    wall_start_ms: int
    speed: float

    def sim_ms(self, elapsed_s: float) -> int:
        return self.sim_start_ms + round(elapsed_s * self.speed * 1000)

    def elapsed_for_sim(self, sim_ms: int) -> float:
        """Real seconds since start at which the simulated clock shows ``sim_ms``."""
        return (sim_ms - self.sim_start_ms) / (self.speed * 1000)

    def wire_ts_ms(self, elapsed_s: float) -> int:
        if self.speed == 1.0:
            return self.sim_ms(elapsed_s)
        return self.wall_start_ms + round(elapsed_s * 1000)

    def wire_ts_for_sim(self, sim_ms: int) -> int:
        """The ``ts`` of something that happened at simulated time ``sim_ms``."""
        return self.wire_ts_ms(self.elapsed_for_sim(sim_ms))


# Relative shopper arrival intensity by hour of the (UTC) simulated day, linearly interpolated: a
# 24-hour store with a night trickle, a quiet morning, a lunch peak and a higher evening peak. UTC keeps
# a seeded run identical on every host whatever its time zone.
_DAY_CURVE_KNOTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.03),
    (5.0, 0.03),
    (7.0, 0.20),
    (9.0, 0.35),
    (11.0, 0.60),
    (12.25, 0.95),
    (13.0, 0.85),
    (14.5, 0.45),
    (16.0, 0.55),
    (17.5, 0.95),
    (18.25, 1.00),
    (19.5, 0.70),
    (21.0, 0.35),
    (22.5, 0.10),
    (24.0, 0.03),
)
_KNOT_HOURS = [hour for hour, _ in _DAY_CURVE_KNOTS]
DAY_CURVE_PEAK = max(level for _, level in _DAY_CURVE_KNOTS)


def day_curve(sim_ms: int) -> float:
    """Relative arrival intensity (0..1] at simulated time ``sim_ms``."""
    hour = (sim_ms % MS_PER_DAY) / MS_PER_HOUR
    index = bisect.bisect_right(_KNOT_HOURS, hour) - 1
    (h0, v0), (h1, v1) = _DAY_CURVE_KNOTS[index], _DAY_CURVE_KNOTS[min(index + 1, len(_DAY_CURVE_KNOTS) - 1)]
    if h1 == h0:
        return v0
    return v0 + (v1 - v0) * (hour - h0) / (h1 - h0)


def day_curve_mean() -> float:
    """Mean of `day_curve` over a day (trapezoid rule on the knots, exact for a piecewise-linear curve)."""
    area = sum((h1 - h0) * (v0 + v1) / 2 for (h0, v0), (h1, v1) in itertools.pairwise(_DAY_CURVE_KNOTS))
    return area / 24.0
