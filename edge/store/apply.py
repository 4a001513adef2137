"""Applying a batch of ingested items to the store, inside one transaction.

For each accepted reading: the ledger row (idempotent on (device, seq, ts)), the derived state it
changes (shelf stock, fridge temperature, zone occupancy, purchases) and its outbox row. Rejections go
to quarantine, card numbers redacted; a purchase whose total disagrees with its lines is stored and
flagged as suspicious (both in edge/store/quarantine.py). Derived "latest" state only moves forward in time,
so late and out-of-order readings are stored but never overwrite a newer value.
"""

from __future__ import annotations

import enum
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from edge.config import DEFAULT_CARD_PATTERN
from edge.state.alerts import AlertBatch, AlertEvent, AlertSignal, apply_signals
from edge.state.rules import StoreRules, fridge_signal, queue_signal, stock_signals
from edge.state.shelf_signal import ShelfCalibration, ShelfChange, ShelfTracker
from edge.store import quarantine
from edge.store.hooks import HouseholdHooks, PurchaseApplied
from sensors.planogram import Planogram
from sensors.schemas import (
    DeviceStatus,
    FootfallCount,
    FridgeTemperature,
    PosTransaction,
    Reading,
    Rejection,
    SequencedReading,
    ShelfEvent,
    ShelfWeight,
)
from sync.outbox import OutboxEntry, append

_json = msgspec.json.Encoder()
_SEQUENCED = (ShelfWeight, ShelfEvent, FridgeTemperature, FootfallCount, PosTransaction)

# A maintenance job runs inside the writer's transaction (housekeeping, planogram load): the only way
# anything else writes to the database, so there is exactly one writer.
MaintenanceJob = Callable[[sqlite3.Connection], object]


class Fate(enum.StrEnum):
    """What became of one item of a batch once it committed (a till's receipt says which)."""

    STORED = "stored"
    DUPLICATE = "duplicate"  # a copy of a reading already in the ledger: no effect
    QUARANTINED = "quarantined"  # a rejection, kept in quarantine
    DONE = "done"  # a maintenance job


@dataclass(slots=True)
class BatchOutcome:
    stored: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    suspicious: Counter[str] = field(default_factory=Counter)  # stored, but flagged for staff
    job_results: list[object] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)
    fates: list[Fate] = field(default_factory=list)  # one per item, in batch order


@dataclass(frozen=True, slots=True)
class Received:
    """One item for the writer, stamped with when the daemon received it."""

    item: Reading | Rejection | MaintenanceJob
    received_ms: int


class BatchApplier:
    def __init__(
        self,
        planogram: Planogram,
        pseudonymiser: quarantine.Pseudonymiser,
        quarantine_max_rows: int = 10_000,
        rules: StoreRules | None = None,
        card_pattern: str = DEFAULT_CARD_PATTERN,
        hooks: HouseholdHooks | None = None,
    ) -> None:
        self._planogram = planogram
        self._hooks = hooks or HouseholdHooks()  # what other capabilities do when a purchase is stored
        self._pseudonymiser = pseudonymiser
        self._redactor = quarantine.CardRedactor(pseudonymiser, card_pattern)
        self._quarantine_max_rows = quarantine_max_rows
        self.rules = rules or StoreRules()
        self._trackers: dict[str, ShelfTracker] = {}
        self._alerts: list[AlertEvent] = []  # raised while applying the current batch
        self._suspicious: Counter[str] = Counter()  # flagged while applying the current batch
        self._now_ms = 0

    def redact_text(self, text: str) -> str:
        """``text`` without card numbers, as a quarantine row would hold it (for log lines)."""
        return self._redactor.redact_text(text)

    def apply(self, conn: sqlite3.Connection, batch: Sequence[Received], now_ms: int) -> BatchOutcome:
        """Apply ``batch`` in one transaction; on any error roll back and re-raise (nothing half-done)."""
        outcome = BatchOutcome()
        outbox: list[OutboxEntry] = []
        self._alerts = []
        self._suspicious = Counter()
        self._now_ms = now_ms
        seen: dict[str, tuple[int, int, int]] = {}  # device -> (last received, newest ts, count)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for received in batch:
                item = received.item
                if isinstance(item, Rejection):
                    quarantine.quarantine(conn, self._redactor, item, received.received_ms)
                    outcome.rejected[item.reason.value] += 1
                    outcome.fates.append(Fate.QUARANTINED)
                elif isinstance(item, DeviceStatus):
                    self._device_status(conn, item, outbox)
                    outcome.stored["device_status"] += 1
                    outcome.fates.append(Fate.STORED)
                elif isinstance(item, _SEQUENCED):
                    if self._reading(conn, item, received.received_ms, outbox):
                        outcome.stored[_kind(item)] += 1
                        outcome.fates.append(Fate.STORED)
                        last, newest, count = seen.get(item.device, (0, 0, 0))
                        seen[item.device] = (
                            max(last, received.received_ms),
                            max(newest, item.ts_ms),
                            count + 1,
                        )
                    else:
                        outcome.duplicates += 1
                        outcome.fates.append(Fate.DUPLICATE)
                else:
                    result = item(conn)
                    if isinstance(result, AlertBatch):
                        self._alerts.extend(result.events)
                    outcome.job_results.append(result)
                    outcome.fates.append(Fate.DONE)
            conn.executemany(
                "UPDATE devices SET last_seen_ms = max(coalesce(last_seen_ms, 0), ?),"
                " last_ts_ms = max(coalesce(last_ts_ms, 0), ?), messages = messages + ? WHERE id = ?",
                [(last, newest, count, device) for device, (last, newest, count) in seen.items()],
            )
            outbox.extend(
                OutboxEntry("alert", f"{a.kind}:{a.subject}", _json.encode(a).decode()) for a in self._alerts
            )
            append(conn, now_ms, outbox)
            if outcome.rejected:
                # Keep quarantine bounded on every write, not just at housekeeping: a device spewing
                # garbage must not be able to fill the disk between two housekeeping runs.
                quarantine.trim(conn, "quarantine", self._quarantine_max_rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            # The in-memory trackers saw readings that did not commit: forget them, they will be
            # rebuilt from the next settled readings (the stored count stays as committed).
            self._trackers.clear()
            raise
        outcome.alerts = self._alerts
        outcome.suspicious = self._suspicious
        return outcome

    # -- per kind -----------------------------------------------------------------------------------
    def _reading(
        self, conn: sqlite3.Connection, r: SequencedReading, received_ms: int, outbox: list[OutboxEntry]
    ) -> bool:
        value, detail = _ledger_value(r)
        cursor = conn.execute(
            "INSERT OR IGNORE INTO readings (device, kind, seq, ts_ms, received_ms, value, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (r.device, _kind(r), r.seq, r.ts_ms, received_ms, value, detail),
        )
        if cursor.rowcount == 0:
            return False
        reading_id = cursor.lastrowid
        if isinstance(r, ShelfWeight):
            self._shelf_weight(conn, r)
            outbox.append(OutboxEntry("reading", r.device, _json.encode(r).decode()))
        elif isinstance(r, ShelfEvent):
            # What the controller itself reports; the counts we trust come from weight steps.
            column = "reported_picks" if r.action == "pick" else "reported_puts"
            conn.execute(
                f"UPDATE shelf_state SET {column} = {column} + ?, event_ms = max(coalesce(event_ms, 0), ?)"  # noqa: S608 - column is one of two literals
                " WHERE shelf = ?",
                (r.count, r.ts_ms, r.shelf),
            )
            outbox.append(OutboxEntry("reading", r.device, _json.encode(r).decode()))
        elif isinstance(r, FridgeTemperature):
            self._fridge(conn, r)
            outbox.append(OutboxEntry("reading", r.device, _json.encode(r).decode()))
        elif isinstance(r, FootfallCount):
            conn.execute(
                "INSERT INTO zone_occupancy (zone, occupancy, entered_total, exited_total, ts_ms)"
                " VALUES (?, max(0, ? - ?), ?, ?, ?) ON CONFLICT (zone) DO UPDATE SET"
                " occupancy = max(0, occupancy + excluded.entered_total - excluded.exited_total),"
                " entered_total = entered_total + excluded.entered_total,"
                " exited_total = exited_total + excluded.exited_total,"
                " ts_ms = max(ts_ms, excluded.ts_ms)",
                (r.zone, r.entered, r.exited, r.entered, r.exited, r.ts_ms),
            )
            self._footfall(conn, r)
            outbox.append(OutboxEntry("reading", r.device, _json.encode(r).decode()))
        else:
            self._purchase(conn, r, reading_id, outbox)
        return True

    def _tracker(self, conn: sqlite3.Connection, shelf_id: str) -> ShelfTracker:
        tracker = self._trackers.get(shelf_id)
        if tracker is None:
            shelf = self._planogram.shelves[shelf_id]
            tracker = ShelfTracker(
                ShelfCalibration(
                    unit_grams=shelf.unit_grams,
                    tare_grams=shelf.tare_grams,
                    capacity=shelf.capacity,
                    settle_s=self.rules.settle_s,
                    settle_tolerance_g=self.rules.settle_tolerance_g,
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

    def _shelf_weight(self, conn: sqlite3.Connection, r: ShelfWeight) -> None:
        tracker = self._tracker(conn, r.shelf)
        was_settled_count = tracker.items
        changes = tracker.feed(r.ts_ms, r.grams)
        for change in changes:
            self._shelf_change(conn, r.shelf, change)
        conn.execute(
            "UPDATE shelf_state SET grams = ?, ts_ms = ?, settled = ?, stuck = ?, items = ?, offset_g = ?,"
            " misplaced_g = ? WHERE shelf = ? AND ts_ms <= ?",
            (r.grams, r.ts_ms, int(tracker.settled), int(tracker.stuck), tracker.items, tracker.offset_g,
             tracker.misplaced_g, r.shelf, r.ts_ms),
        )  # fmt: skip
        if tracker.items is None or not (changes or was_settled_count is None or tracker.stuck):
            return
        shelf = self._planogram.shelves[r.shelf]
        rate = self._pick_rate_per_h(conn, r.shelf, r.ts_ms)
        eta_min = tracker.items / rate * 60 if rate > 0 else None
        conn.execute(
            "UPDATE shelf_state SET pick_rate_per_h = ?, stockout_ms = ? WHERE shelf = ?",
            (rate, None if eta_min is None else int(r.ts_ms + eta_min * 60_000), r.shelf),
        )
        if shelf.mixed:  # other products' weight is expected here: not a misplaced item
            tracker.misplaced_g = 0.0
        self._signal(
            conn,
            stock_signals(
                self.rules, r.shelf, shelf.product, tracker.items, eta_min, tracker.misplaced_g, tracker.stuck
            ),
        )

    def _shelf_change(self, conn: sqlite3.Connection, shelf: str, change: ShelfChange) -> None:
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

    def _pick_rate_per_h(self, conn: sqlite3.Connection, shelf: str, now_ms: int) -> float:
        """Items picked in the last hour (a simple estimator; the models issue brings a better one)."""
        (picked,) = conn.execute(
            "SELECT coalesce(sum(items), 0) FROM shelf_changes WHERE shelf = ? AND kind = 'pick' AND ts_ms > ?",
            (shelf, now_ms - 3_600_000),
        ).fetchone()
        return float(picked)

    def _fridge(self, conn: sqlite3.Connection, r: FridgeTemperature) -> None:
        fridge = self._planogram.fridges[r.unit]
        row = conn.execute(
            "SELECT ts_ms, out_since_ms, in_since_ms FROM fridge_state WHERE unit = ?", (r.unit,)
        ).fetchone()
        if row is not None and r.ts_ms < row[0]:
            return  # late: stored in the ledger, but the excursion clock only runs forward
        out_since, in_since = (row[1], row[2]) if row else (None, None)
        if fridge.min_c <= r.celsius <= fridge.max_c:
            out_since, in_since = None, in_since if in_since is not None else r.ts_ms
        else:
            out_since, in_since = out_since if out_since is not None else r.ts_ms, None
        conn.execute(
            "INSERT INTO fridge_state (unit, celsius, ts_ms, out_since_ms, in_since_ms) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (unit) DO UPDATE SET celsius = excluded.celsius, ts_ms = excluded.ts_ms,"
            " out_since_ms = excluded.out_since_ms, in_since_ms = excluded.in_since_ms",
            (r.unit, r.celsius, r.ts_ms, out_since, in_since),
        )
        signal = fridge_signal(
            self.rules, r.unit, r.celsius, fridge.min_c, fridge.max_c, out_since, in_since, r.ts_ms
        )
        if signal is not None:
            self._signal(conn, [signal])

    def _footfall(self, conn: sqlite3.Connection, r: FootfallCount) -> None:
        (occupancy,) = conn.execute(
            "SELECT occupancy FROM zone_occupancy WHERE zone = ?", (r.zone,)
        ).fetchone()
        hour_ms = r.ts_ms - r.ts_ms % 3_600_000
        conn.execute(
            "INSERT INTO footfall_hourly (zone, hour_ms, entered, exited, peak_occupancy, person_seconds, observed_s)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (zone, hour_ms) DO UPDATE SET"
            " entered = entered + excluded.entered, exited = exited + excluded.exited,"
            " peak_occupancy = max(peak_occupancy, excluded.peak_occupancy),"
            " person_seconds = person_seconds + excluded.person_seconds, observed_s = observed_s + excluded.observed_s",
            (r.zone, hour_ms, r.entered, r.exited, occupancy, occupancy * r.interval_s, r.interval_s),
        )
        zone = self._planogram.zones[r.zone]
        signal = queue_signal(self.rules, r.zone, occupancy, zone.capacity) if zone.checkout else None
        if signal is not None:
            self._signal(conn, [signal])

    def _signal(self, conn: sqlite3.Connection, signals: list[AlertSignal]) -> None:
        self._alerts.extend(apply_signals(conn, signals, self._now_ms))

    def _purchase(
        self, conn: sqlite3.Connection, r: PosTransaction, reading_id: int | None, outbox: list[OutboxEntry]
    ) -> None:
        household = self._pseudonymiser.household_id(r.loyalty_id) if r.loyalty_id else None
        if (
            household is not None
            and conn.execute(
                "SELECT 1 FROM erasures WHERE household = ? AND erased_ms >= ?", (household, r.ts_ms)
            ).fetchone()
        ):
            household = (
                None  # made before the shopper asked to be forgotten, delivered late: a sale, no one's
            )
        if household is not None:
            conn.execute(
                "INSERT INTO households (id, first_seen_ms, last_seen_ms, purchases) VALUES (?, ?, ?, 1)"
                " ON CONFLICT (id) DO UPDATE SET purchases = purchases + 1,"
                " first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),"
                " last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
                (household, r.ts_ms, r.ts_ms),
            )
        cursor = conn.execute(
            "INSERT INTO purchases (reading_id, lane, basket_id, household, ts_ms, total, lines)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (reading_id, r.lane, r.basket_id, household, r.ts_ms, r.total, len(r.items)),
        )
        purchase_id = cursor.lastrowid
        suspicion = quarantine.check_pos_total(r)
        if suspicion is not None:  # stored as the till sent it (and synced), flagged for staff
            quarantine.record_suspicious(
                conn, suspicion, r, purchase_id, self._now_ms, self._quarantine_max_rows
            )
            self._suspicious[suspicion.reason] += 1
        categories = self._planogram.categories_by_sku
        conn.executemany(
            "INSERT INTO purchase_items (purchase_id, line, sku, category, qty, unit_price) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (purchase_id, line, item.sku, categories.get(item.sku), item.qty, item.unit_price)
                for line, item in enumerate(r.items, start=1)
            ],
        )
        body = {
            "lane": r.lane,
            "basket_id": r.basket_id,
            "household": household,
            "ts_ms": r.ts_ms,
            "total": r.total,
            "items": [
                {"sku": i.sku, "qty": i.qty, "unit_price": i.unit_price, "category": categories.get(i.sku)}
                for i in r.items
            ],
        }
        outbox.append(OutboxEntry("purchase", r.basket_id, _json.encode(body).decode()))
        if household is not None:  # e.g. predictions record outcomes and queue a rescore (edge.store.hooks)
            bought = frozenset(c for item in r.items if (c := categories.get(item.sku)) is not None)
            event = PurchaseApplied(household, bought, r.ts_ms, self._now_ms)
            outbox.extend(self._hooks.purchase_applied(conn, event))

    def _device_status(self, conn: sqlite3.Connection, s: DeviceStatus, outbox: list[OutboxEntry]) -> None:
        cursor = conn.execute(
            "UPDATE devices SET online = ?, status_ms = ? WHERE id = ? AND coalesce(status_ms, 0) <= ?",
            (int(s.online), s.ts_ms, s.device, s.ts_ms),
        )
        if cursor.rowcount:
            outbox.append(OutboxEntry("device_status", s.device, _json.encode(s).decode()))
            self._signal(
                conn,
                [
                    AlertSignal(
                        "device_offline",
                        s.device,
                        not s.online,
                        "warning",
                        f"{s.device} went offline",
                        {"device": s.device},
                    )
                ],
            )


def _kind(r: SequencedReading) -> str:
    return type(r).__struct_config__.tag  # type: ignore[return-value]


def _ledger_value(r: SequencedReading) -> tuple[float | None, str | None]:
    if isinstance(r, ShelfWeight):
        return r.grams, None
    if isinstance(r, FridgeTemperature):
        return r.celsius, None
    if isinstance(r, ShelfEvent):
        return float(r.count), r.action
    if isinstance(r, FootfallCount):
        return float(r.entered - r.exited), f"{r.entered}/{r.exited}/{r.interval_s}"
    return r.total, r.basket_id


def load_planogram_job(planogram: Planogram) -> MaintenanceJob:
    """Mirror the planogram into the store's reference tables and register its devices."""

    def job(conn: sqlite3.Connection) -> int:
        conn.executemany(
            "INSERT INTO products (sku, name, category, unit_grams, storage) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (sku) DO UPDATE SET name = excluded.name, category = excluded.category,"
            " unit_grams = excluded.unit_grams, storage = excluded.storage",
            [(s.sku, s.product, s.category, s.unit_grams, s.storage) for s in planogram.shelves.values()],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO shelves (id, aisle, zone, sku, capacity, unit_grams, tare_grams, transport, fridge,"
            " facings, mixed_with) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    s.id,
                    s.aisle,
                    s.zone,
                    s.sku,
                    s.capacity,
                    s.unit_grams,
                    s.tare_grams,
                    s.transport,
                    s.fridge,
                    s.facings,
                    ",".join(s.mixed_with),
                )
                for s in planogram.shelves.values()
            ],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO fridges (id, storage, min_c, max_c) VALUES (?, ?, ?, ?)",
            [(f.id, f.storage, f.min_c, f.max_c) for f in planogram.fridges.values()],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO zones (id, capacity, checkout) VALUES (?, ?, ?)",
            [(z.id, z.capacity, int(z.checkout)) for z in planogram.zones.values()],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO shelf_state (shelf, grams, items, ts_ms) VALUES (?, NULL, NULL, 0)",
            [(s.id,) for s in planogram.shelves.values()],
        )
        conn.executemany(
            "INSERT INTO devices (id, kind, subject) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [(d, *d.split("-", 1)) for d in sorted(planogram.devices)],
        )
        return len(planogram.devices)

    return job
