"""Device models: what each simulated sensor would read. Pure (no clocks, no I/O) and seeded.

Times here are real seconds since the run started (``now_s``): sensor physics plays out in the time
the daemon sees on the wire (see `simulators.clock`).
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sensors.planogram import Fridge, Shelf
from sensors.schemas import PosItem


@dataclass(slots=True)
class SequenceCounter:
    """A device's ``seq``: 1, 2, 3, ... Shared by every message kind one device sends."""

    last: int = 0

    def next(self) -> int:
        self.last += 1
        return self.last


@dataclass(slots=True)
class LoadCell:
    """A shelf's load cell: gross grams = tare + items * unit_grams + drift + noise.

    Noise is Gaussian (a couple of grams, clipped at 4 sigma so one wild sample never looks like an
    item). Drift is an Ornstein-Uhlenbeck walk of a few grams over minutes, bounded so that an empty
    shelf never reads below the daemon's 20 g negative tolerance.
    """

    shelf: Shelf
    rng: random.Random
    noise_sigma_g: float = 2.0
    drift_limit_g: float = 8.0
    drift_reversion_per_s: float = 1.0 / 600.0
    drift_volatility_g: float = 0.15  # grams per sqrt(second)
    drift_g: float = 0.0
    _last_s: float | None = None

    def read(self, items: int, now_s: float) -> float:
        dt = 0.0 if self._last_s is None else max(0.0, now_s - self._last_s)
        self._last_s = now_s if self._last_s is None else max(self._last_s, now_s)
        self.drift_g += -self.drift_reversion_per_s * self.drift_g * dt
        self.drift_g += self.drift_volatility_g * math.sqrt(dt) * self.rng.gauss(0.0, 1.0)
        self.drift_g = min(self.drift_limit_g, max(-self.drift_limit_g, self.drift_g))
        limit = 4 * self.noise_sigma_g
        noise = min(limit, max(-limit, self.rng.gauss(0.0, self.noise_sigma_g)))
        grams = self.shelf.tare_grams + items * self.shelf.unit_grams + self.drift_g + noise
        return round(grams, 1)


@dataclass(frozen=True, slots=True)
class _Transient:
    """A temporary push of the temperature towards ``rise_c`` above normal, until ``until_s``."""

    until_s: float = -math.inf
    rise_c: float = 0.0


@dataclass(slots=True)
class FridgeThermometer:
    """A fridge's probe: a compressor cycle around a setpoint mid-range, noise, and transients.

    Door openings (`open_door`, when a shopper reaches in) push the temperature up by a few degrees
    (time constant ~8 s) for as long as the door is open (3-20 s); it recovers over tens of seconds
    (time constant ~30 s). Long excursions (a defrost gone wrong, a door left ajar) come on their own,
    about once every ``excursion_mean_interval_s`` of real time, and push the temperature past
    ``max_c`` for 4-12 minutes: long enough for an alert, rare enough not to be the normal state.
    Transients are integrated exactly between breakpoints, so reading every 5 s or every 50 ms gives
    the same curve, and the excursion schedule depends only on the seed.
    """

    fridge: Fridge
    rng: random.Random
    setpoint_c: float = 0.0
    cycle_amplitude_c: float = 0.0
    cycle_period_s: float = 1200.0
    cycle_phase: float = 0.0
    noise_sigma_c: float = 0.1
    excursion_mean_interval_s: float = 3 * 3600.0
    offset_c: float = 0.0
    next_excursion_s: float = math.inf
    _door: _Transient = field(default_factory=_Transient)
    _excursion: _Transient = field(default_factory=_Transient)
    _last_s: float = 0.0

    DOOR_RISE_TAU_S = 8.0
    EXCURSION_RISE_TAU_S = 90.0
    RECOVERY_TAU_S = 30.0

    @classmethod
    def for_fridge(
        cls, fridge: Fridge, rng: random.Random, excursion_mean_interval_s: float = 3 * 3600.0
    ) -> FridgeThermometer:
        span = fridge.max_c - fridge.min_c
        thermometer = cls(
            fridge=fridge,
            rng=rng,
            setpoint_c=fridge.min_c + 0.5 * span,
            cycle_amplitude_c=0.15 * span,
            cycle_period_s=rng.uniform(900.0, 1500.0),
            cycle_phase=rng.uniform(0.0, 2 * math.pi),
            noise_sigma_c=0.02 * span,
            excursion_mean_interval_s=excursion_mean_interval_s,
        )
        thermometer.next_excursion_s = rng.expovariate(1.0 / excursion_mean_interval_s)
        return thermometer

    @property
    def chilled(self) -> bool:
        return self.fridge.storage == "chilled"

    def open_door(self, now_s: float) -> None:
        self._advance(now_s)
        now_s = self._last_s
        duration = self.rng.uniform(5.0, 20.0) if self.chilled else self.rng.uniform(3.0, 12.0)
        rise = self.rng.uniform(2.5, 4.0) if self.chilled else self.rng.uniform(1.0, 2.5)
        if self.door_open(now_s):  # held open longer by the next shopper
            rise = max(rise, self._door.rise_c)
        self._door = _Transient(max(self._door.until_s, now_s + duration), rise)

    def start_excursion(self, now_s: float) -> None:
        """Start a long excursion now (they also start on their own; see the class docstring)."""
        self._advance(now_s)
        self._begin_excursion(self._last_s)

    def door_open(self, now_s: float) -> bool:
        return now_s < self._door.until_s

    def in_excursion(self, now_s: float) -> bool:
        return now_s < self._excursion.until_s

    def read(self, now_s: float) -> float:
        self._advance(now_s)
        now_s = self._last_s
        cycle = self.cycle_amplitude_c * math.sin(
            2 * math.pi * now_s / self.cycle_period_s + self.cycle_phase
        )
        noise = self.rng.gauss(0.0, self.noise_sigma_c)
        return round(self.setpoint_c + cycle + self.offset_c + noise, 2)

    def _begin_excursion(self, now_s: float) -> None:
        span = self.fridge.max_c - self.fridge.min_c
        until = now_s + self.rng.uniform(240.0, 720.0)
        # 1.0-1.6 spans above a mid-range setpoint: out of range by a few degrees.
        self._excursion = _Transient(until, span * self.rng.uniform(1.0, 1.6))
        self.next_excursion_s = until + self.rng.expovariate(1.0 / self.excursion_mean_interval_s)

    def _advance(self, to_s: float) -> None:
        while self._last_s < to_s:
            t = self._last_s
            if t >= self.next_excursion_s:
                self._begin_excursion(t)
            breaks = [
                b
                for b in (self._door.until_s, self._excursion.until_s, self.next_excursion_s)
                if t < b < to_s
            ]
            segment_end = min(breaks, default=to_s)
            target, rise_tau = 0.0, self.RECOVERY_TAU_S
            if t < self._door.until_s and self._door.rise_c > target:
                target, rise_tau = self._door.rise_c, self.DOOR_RISE_TAU_S
            if t < self._excursion.until_s and self._excursion.rise_c > target:
                target, rise_tau = self._excursion.rise_c, self.EXCURSION_RISE_TAU_S
            tau = rise_tau if target > self.offset_c else self.RECOVERY_TAU_S
            self.offset_c = target + (self.offset_c - target) * math.exp(-(segment_end - t) / tau)
            self._last_s = segment_end
        if self._last_s >= self.next_excursion_s:
            self._begin_excursion(self._last_s)


@dataclass(slots=True)
class FootfallCounter:
    """A zone's people counter: who crossed in and out since the last report."""

    entered: int = 0
    exited: int = 0

    def record(self, *, entered: bool) -> None:
        if entered:
            self.entered += 1
        else:
            self.exited += 1

    def take(self) -> tuple[int, int]:
        counts = (self.entered, self.exited)
        self.entered = self.exited = 0
        return counts


def unit_price(sku: str, prices: Mapping[str, float] | None = None) -> float:
    """Shelf price of a SKU: the store catalog's (``prices``, sku -> price) when it lists the SKU. Else,
    as the planogram carries no prices, a stable one derived from the SKU: 0.49..9.99 ending in 9,
    identical on every run and every seed (a till's prices do not change)."""
    if prices is not None and (listed := prices.get(sku)) is not None:
        return listed
    tenths = 5 + zlib.crc32(sku.encode("utf-8")) % 96
    return round(tenths / 10 - 0.01, 2)


def basket_items(
    lines: Iterable[tuple[str, int]], prices: Mapping[str, float] | None = None
) -> tuple[list[PosItem], float]:
    """Till lines (one per SKU, quantities summed, priced by `unit_price`) and the basket total."""
    quantities: dict[str, int] = {}
    for sku, quantity in lines:
        quantities[sku] = quantities.get(sku, 0) + quantity
    items = [
        PosItem(sku=sku, qty=float(qty), unit_price=unit_price(sku, prices))
        for sku, qty in quantities.items()
    ]
    total = round(sum(item.qty * item.unit_price for item in items), 2)
    return items, total
