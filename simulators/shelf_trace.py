"""Load-cell traces with ground truth, for measuring the daemon's shelf signal processing.

A trace is what one shelf's load cell reports over a trading period, reading by reading, with the
true item count behind every reading and the true pick/put/restock events: shoppers pick one to three
items (the weight passes through a moment of motion while a hand lifts them), sometimes put one back,
rest a hand on the shelf without taking anything, or leave a foreign item on it (and later someone
takes it away); staff restock when the shelf runs low. Noise and slow drift come from `LoadCell`.
Deterministic from the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

TrueKind = Literal["pick", "put", "restock", "misplaced", "misplaced_removed"]


@dataclass(frozen=True, slots=True)
class TracePoint:
    ts_ms: int
    grams: float
    true_items: int
    disturbed: bool  # a hand or an item in motion is on the shelf at this reading


@dataclass(frozen=True, slots=True)
class TrueEvent:
    kind: TrueKind
    items: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class TraceSpec:
    unit_grams: float
    capacity: int
    tare_grams: float = 0.0
    duration_s: float = 8 * 3600
    hz: float = 1.0
    picks_per_hour: float = 12.0
    put_back_share: float = 0.1
    hands_per_hour: float = 4.0
    misplaced_per_hour: float = 0.3
    noise_sigma_g: float = 2.0
    drift_limit_g: float = 8.0
    restock_below: int = 2


def shelf_trace(  # noqa: PLR0915 - one time-stepped loop reads best in one piece
    spec: TraceSpec, seed: int, start_ms: int = 1_795_514_400_000
) -> tuple[list[TracePoint], list[TrueEvent]]:
    rng = random.Random(seed)
    dt = 1.0 / spec.hz
    steps = int(spec.duration_s * spec.hz)
    items = rng.randint(spec.capacity // 2, spec.capacity)
    foreign_g = 0.0
    drift = 0.0
    points: list[TracePoint] = []
    events: list[TrueEvent] = []
    busy_until = 0.0  # a transition or a hand occupies the shelf until then
    extra_g = 0.0  # weight of a hand or an item in motion
    pending: tuple[TrueKind, int] | None = None  # the event that completes when the motion ends
    per_step = {
        "pick": spec.picks_per_hour / 3600 * dt,
        "hand": spec.hands_per_hour / 3600 * dt,
        "misplace": spec.misplaced_per_hour / 3600 * dt,
    }
    for step in range(steps):
        t = step * dt
        ts_ms = start_ms + int(t * 1000)
        if t >= busy_until and pending is not None:
            kind, n = pending
            pending = None
            events.append(TrueEvent(kind, n, ts_ms))
        if t >= busy_until:
            extra_g = 0.0
            roll = rng.random()
            motion_s = rng.uniform(0.8, 2.0)
            if items <= spec.restock_below and rng.random() < 0.02 * dt:  # staff notice within a minute or so
                n = spec.capacity - items
                items += n
                pending, busy_until, extra_g = ("restock", n), t + rng.uniform(3, 8), rng.uniform(300, 2000)
            elif roll < per_step["pick"] and items > 0:
                if rng.random() < spec.put_back_share and items < spec.capacity:
                    n = 1
                    items += n
                    pending = ("put", n)
                else:
                    n = min(items, rng.choice((1, 1, 1, 2, 2, 3)))
                    items -= n
                    pending = ("pick", n)
                busy_until, extra_g = t + motion_s, rng.uniform(200, 1500)
            elif roll < per_step["pick"] + per_step["hand"]:
                busy_until, extra_g = t + rng.uniform(0.5, 1.5), rng.uniform(300, 1500)
            elif roll < per_step["pick"] + per_step["hand"] + per_step["misplace"]:
                if foreign_g:
                    events.append(TrueEvent("misplaced_removed", 0, ts_ms))
                    foreign_g = 0.0
                else:
                    # a foreign product: not a whole number of this shelf's items
                    foreign_g = spec.unit_grams * rng.uniform(0.35, 0.65) + rng.choice((0.0, spec.unit_grams))
                    events.append(TrueEvent("misplaced", 0, ts_ms))
                busy_until, extra_g = t + motion_s, rng.uniform(200, 800)
        drift += -drift / 600 * dt + 0.15 * (dt**0.5) * rng.gauss(0, 1)
        drift = max(-spec.drift_limit_g, min(spec.drift_limit_g, drift))
        noise = max(-4 * spec.noise_sigma_g, min(4 * spec.noise_sigma_g, rng.gauss(0, spec.noise_sigma_g)))
        disturbed = t < busy_until
        wobble = extra_g * rng.uniform(0.6, 1.0) if disturbed else 0.0
        grams = spec.tare_grams + items * spec.unit_grams + foreign_g + drift + noise + wobble
        points.append(TracePoint(ts_ms, round(grams, 1), items, disturbed))
    return points, events
