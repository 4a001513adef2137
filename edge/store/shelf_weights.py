"""Shelf weight readings inside the batch transaction: the load-cell trackers, shelf_changes, stock signals.

The trackers (`edge.state.shelf_signal`) live here, in the writer thread, and resume from the committed
count after a restart. A shelf's weight columns in ``shelf_state`` are written once per batch rather than
once per reading (`ShelfWeights.flush`): each reading's UPDATE applied only if its ts was not older than
the stored one, so the sequence left exactly the state of the last reading with the newest ts, which is
the one row kept per shelf. Counts, pick rates and changes are written as they happen.
"""

from __future__ import annotations

import sqlite3

from edge.state.alerts import AlertSignal
from edge.state.rules import StoreRules, stock_signals
from edge.state.shelf_signal import ShelfCalibration, ShelfChange, ShelfTracker
from sensors.planogram import Planogram
from sensors.schemas import ShelfWeight

# shelf_state's weight columns for one shelf: grams, ts_ms, settled, stuck, items, offset_g, misplaced_g,
# then the WHERE's shelf and ts_ms.
_ShelfRow = tuple[float, int, int, int, int | None, float, float, str, int]


class ShelfWeights:
    def __init__(self, planogram: Planogram) -> None:
        self._planogram = planogram
        self._trackers: dict[str, ShelfTracker] = {}
        self._rows: dict[str, _ShelfRow] = {}  # written by `flush`

    def forget(self) -> None:
        """The batch rolled back: the trackers saw readings that did not commit. They are rebuilt from the
        committed count and the next settled readings."""
        self._trackers.clear()
        self._rows.clear()

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write each shelf's latest weight state of the batch so far (see the module docstring)."""
        if self._rows:
            conn.executemany(
                "UPDATE shelf_state SET grams = ?, ts_ms = ?, settled = ?, stuck = ?, items = ?, offset_g = ?,"
                " misplaced_g = ? WHERE shelf = ? AND ts_ms <= ?",
                self._rows.values(),
            )
            self._rows.clear()

    def apply(self, conn: sqlite3.Connection, r: ShelfWeight, rules: StoreRules) -> list[AlertSignal]:
        """One new weight reading; returns the stock signals it raised (none unless the count moved)."""
        tracker = self._tracker(conn, r.shelf, rules)
        was_settled_count = tracker.items
        changes = tracker.feed(r.ts_ms, r.grams)
        for change in changes:
            _shelf_change(conn, r.shelf, change)
        pending = self._rows.get(r.shelf)
        if pending is None or r.ts_ms >= pending[1]:  # the last reading with the newest ts wins
            self._rows[r.shelf] = (r.grams, r.ts_ms, int(tracker.settled), int(tracker.stuck), tracker.items,
                                   tracker.offset_g, tracker.misplaced_g, r.shelf, r.ts_ms)  # fmt: skip
        if tracker.items is None or not (changes or was_settled_count is None or tracker.stuck):
            return []
        shelf = self._planogram.shelves[r.shelf]
        rate = _pick_rate_per_h(conn, r.shelf, r.ts_ms)
        eta_min = tracker.items / rate * 60 if rate > 0 else None
        conn.execute(
            "UPDATE shelf_state SET pick_rate_per_h = ?, stockout_ms = ? WHERE shelf = ?",
            (rate, None if eta_min is None else int(r.ts_ms + eta_min * 60_000), r.shelf),
        )
        if shelf.mixed:  # other products' weight is expected here: not a misplaced item
            tracker.misplaced_g = 0.0
        return stock_signals(
            rules, r.shelf, shelf.product, tracker.items, eta_min, tracker.misplaced_g, tracker.stuck
        )

    def _tracker(self, conn: sqlite3.Connection, shelf_id: str, rules: StoreRules) -> ShelfTracker:
        tracker = self._trackers.get(shelf_id)
        if tracker is None:
            shelf = self._planogram.shelves[shelf_id]
            tracker = ShelfTracker(
                ShelfCalibration(
                    unit_grams=shelf.unit_grams,
                    tare_grams=shelf.tare_grams,
                    capacity=shelf.capacity,
                    settle_s=rules.settle_s,
                    settle_tolerance_g=rules.settle_tolerance_g,
                )
            )
            row = conn.execute(
                "SELECT items, offset_g, misplaced_g, ts_ms FROM shelf_state WHERE shelf = ?", (shelf_id,)
            ).fetchone()
            if row is not None and row[0] is not None:
                # Resume from the committed count: the next settled level is compared with it.
                tracker.items = int(row[0])
                tracker.offset_g, tracker.misplaced_g = float(row[1]), float(row[2])
                tracker.settled_grams = shelf.tare_grams + tracker.items * shelf.unit_grams + tracker.offset_g
                tracker.last_ts_ms = int(row[3])
            self._trackers[shelf_id] = tracker
        return tracker


def _shelf_change(conn: sqlite3.Connection, shelf: str, change: ShelfChange) -> None:
    conn.execute(
        "INSERT INTO shelf_changes (shelf, kind, items, grams, ts_ms) VALUES (?, ?, ?, ?, ?)",
        (shelf, change.kind, change.items, change.grams, change.ts_ms),
    )
    if change.kind == "pick":
        conn.execute(
            "UPDATE shelf_state SET picks = picks + ?, event_ms = ? WHERE shelf = ?",
            (change.items, change.ts_ms, shelf),
        )
    elif change.kind in ("put", "restock"):
        conn.execute(
            "UPDATE shelf_state SET puts = puts + ?, event_ms = ? WHERE shelf = ?",
            (change.items, change.ts_ms, shelf),
        )


def _pick_rate_per_h(conn: sqlite3.Connection, shelf: str, now_ms: int) -> float:
    """Items picked in the last hour (a simple estimator; the models issue brings a better one)."""
    (picked,) = conn.execute(
        "SELECT coalesce(sum(items), 0) FROM shelf_changes WHERE shelf = ? AND kind = 'pick' AND ts_ms > ?",
        (shelf, now_ms - 3_600_000),
    ).fetchone()
    return float(picked)
