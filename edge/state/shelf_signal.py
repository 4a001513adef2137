"""Load-cell signal processing for one shelf: settle, count, detect picks and put-backs.

A reading is trusted only once the shelf is still: at least ``settle_readings`` readings spanning
``settle_s`` seconds whose spread is within ``settle_tolerance_g``. A shopper's hand resting on the
shelf, or an item being placed, makes the signal move, so nothing is counted until it settles again.
Between two settled levels the difference is explained as:

- a whole number of items (within ``count_tolerance`` of a unit): picks or put-backs, several at once
  allowed; a large put-back is a restock;
- a small difference (below ``drift_tolerance``): slow load-cell drift, absorbed into an offset;
- anything else: a weight that matches no number of this shelf's product, i.e. a misplaced item. The
  count is kept, the extra weight is remembered, and removing it later clears the flag.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

ChangeKind = Literal["pick", "put", "restock", "misplaced", "misplaced_removed"]


@dataclass(frozen=True, slots=True)
class ShelfCalibration:
    unit_grams: float
    tare_grams: float = 0.0
    capacity: int = 10
    settle_s: float = 1.0
    settle_readings: int = 3
    settle_tolerance_g: float = 20.0
    count_tolerance: float = 0.3  # of a unit: how far a step may be from a whole number of items
    drift_tolerance: float = 0.15  # of a unit: smaller level changes are drift, not items
    restock_min_items: int = 3
    stuck_readings: int = 120  # identical raw values in a row: the cell is stuck, not still

    @property
    def settle_window_g(self) -> float:
        # Never wider than a third of an item, or a slow pick could be mistaken for stillness.
        return min(self.settle_tolerance_g, self.unit_grams / 3)


@dataclass(frozen=True, slots=True)
class ShelfChange:
    kind: ChangeKind
    items: int  # items moved (0 for misplaced weight)
    grams: float  # the settled level change that explained it
    ts_ms: int


@dataclass(slots=True)
class ShelfTracker:
    calibration: ShelfCalibration
    items: int | None = None
    settled_grams: float | None = None
    offset_g: float = 0.0  # drift and unexplained mass on top of tare + items * unit
    misplaced_g: float = 0.0
    settled: bool = False
    stuck: bool = False
    last_ts_ms: int = 0
    _window: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=64))
    _same_count: int = 0
    _last_raw: float | None = None

    def feed(self, ts_ms: int, grams: float) -> list[ShelfChange]:
        """Process one reading (in time order; older readings are ignored) and return what changed."""
        if ts_ms < self.last_ts_ms:
            return []
        self.last_ts_ms = ts_ms
        self._track_stuck(grams)
        window = self._window
        window.append((ts_ms, grams))
        cal = self.calibration
        while len(window) > cal.settle_readings and (ts_ms - window[1][0]) / 1000 >= cal.settle_s:
            window.popleft()
        span_s = (window[-1][0] - window[0][0]) / 1000
        if len(window) < cal.settle_readings or span_s < cal.settle_s:
            self.settled = False  # too few or too close together: no need to look at the values
            return []
        values = [g for _, g in window]
        still = max(values) - min(values) <= cal.settle_window_g
        self.settled = still
        if not still:
            return []
        return self._settle(ts_ms, statistics.median(values))

    def _track_stuck(self, grams: float) -> None:
        self._same_count = self._same_count + 1 if grams == self._last_raw else 1
        self._last_raw = grams
        self.stuck = self._same_count >= self.calibration.stuck_readings

    def _settle(self, ts_ms: int, level: float) -> list[ShelfChange]:
        """Explain a settled level from scratch (so one wrong reading of the shelf heals at the next):
        a whole number of items, or that plus the foreign weight already known, or a new foreign weight."""
        cal = self.calibration
        unit = cal.unit_grams
        tolerance = cal.count_tolerance * unit
        net = level - cal.tare_grams - self.offset_g
        before, before_misplaced = self.items, self.misplaced_g
        self.settled_grams = level
        whole = round(net / unit)
        residual = net - whole * unit
        if abs(residual) <= tolerance and whole >= 0:
            items, misplaced = whole, 0.0
        elif (
            before_misplaced
            and abs((net - before_misplaced) - round((net - before_misplaced) / unit) * unit) <= tolerance
        ):
            items = round((net - before_misplaced) / unit)
            residual = net - before_misplaced - items * unit
            misplaced = before_misplaced
        else:
            # Weight that is no whole number of our items. Foreign items only ever add weight, so:
            # below what we had, items were taken (count the whole ones left); above, keep the count
            # and call the rest misplaced.
            floor_items = max(0, int(net // unit))
            items = floor_items if before is None or floor_items < before else before
            misplaced, residual = net - items * unit, 0.0
        items = max(0, items)
        if abs(residual) <= min(cal.drift_tolerance * unit, cal.settle_window_g):
            self.offset_g += residual / 2  # slow drift of the cell: follow it, gently
        self.items, self.misplaced_g = items, misplaced
        changes: list[ShelfChange] = []
        if before_misplaced and not misplaced:
            changes.append(ShelfChange("misplaced_removed", 0, -before_misplaced, ts_ms))
        elif misplaced and abs(misplaced - before_misplaced) > tolerance:
            changes.append(ShelfChange("misplaced", 0, misplaced - before_misplaced, ts_ms))
        if before is None:
            return changes
        moved = items - before
        if moved < 0:
            changes.append(ShelfChange("pick", -moved, moved * unit, ts_ms))
        elif moved > 0:
            kind: ChangeKind = "restock" if moved >= cal.restock_min_items else "put"
            changes.append(ShelfChange(kind, moved, moved * unit, ts_ms))
        return changes
