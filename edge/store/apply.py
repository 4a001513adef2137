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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import msgspec

from edge.config import DEFAULT_CARD_PATTERN
from edge.state.alerts import AlertBatch, AlertEvent, AlertSignal, apply_signals
from edge.state.rules import StoreRules, fridge_signal, queue_signal
from edge.store import ledger, quarantine
from edge.store.hooks import HouseholdHooks
from edge.store.ledger import LedgerRow, insert_new, kind_of, ledger_row
from edge.store.purchases import PurchaseContext, SkuCategories, store_purchase
from edge.store.shelf_weights import ShelfWeights
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
        sku_categories: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        """``sku_categories``: the SKUs beyond the planogram's with their category (the catalog's)."""
        self._planogram = planogram
        self._purchases = PurchaseContext(
            pseudonymiser,
            hooks or HouseholdHooks(),  # what other capabilities do when a purchase is stored
            SkuCategories(planogram.categories_by_sku, sku_categories or dict),
            quarantine_max_rows,
        )
        self._redactor = quarantine.CardRedactor(pseudonymiser, card_pattern)
        self._quarantine_max_rows = quarantine_max_rows
        self.rules = rules or StoreRules()
        self._shelves = ShelfWeights(planogram)  # the shelves' trackers and weight state
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
            self._apply_items(conn, batch, outcome, outbox, seen)
            self._shelves.flush(conn)
            _flush_devices(conn, seen)
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
            self._shelves.forget()
            raise
        outcome.alerts = self._alerts
        outcome.suspicious = self._suspicious
        return outcome

    def _apply_items(
        self,
        conn: sqlite3.Connection,
        batch: Sequence[Received],
        outcome: BatchOutcome,
        outbox: list[OutboxEntry],
        seen: dict[str, tuple[int, int, int]],
    ) -> None:
        new: dict[int, bool] = {}  # batch index -> the reading was not in the ledger yet
        for index, received in enumerate(batch):
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
                if index not in new:
                    new.update(_ledger_run(conn, batch, index))
                if new[index]:
                    self._derive(conn, item, outbox)
                    outcome.stored[kind_of(item)] += 1
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
                # A job sees the state of everything before it (the silence check reads last_seen_ms).
                self._shelves.flush(conn)
                _flush_devices(conn, seen)
                result = item(conn)
                if isinstance(result, AlertBatch):
                    self._alerts.extend(result.events)
                outcome.job_results.append(result)
                outcome.fates.append(Fate.DONE)

    # -- per kind -----------------------------------------------------------------------------------
    def _derive(self, conn: sqlite3.Connection, r: SequencedReading, outbox: list[OutboxEntry]) -> None:
        """The derived state and outbox row of a reading that was new to the ledger."""
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
            self._purchase(conn, r, ledger.reading_id(conn, r), outbox)

    def _shelf_weight(self, conn: sqlite3.Connection, r: ShelfWeight) -> None:
        self._signal(conn, self._shelves.apply(conn, r, self.rules))

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
        suspicious = store_purchase(conn, r, reading_id, self._now_ms, self._purchases, outbox)
        if suspicious is not None:
            self._suspicious[suspicious] += 1

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


def _flush_devices(conn: sqlite3.Connection, seen: dict[str, tuple[int, int, int]]) -> None:
    """Each device's last seen, newest ts and message count of the readings so far: one row a device."""
    if seen:
        conn.executemany(
            "UPDATE devices SET last_seen_ms = max(coalesce(last_seen_ms, 0), ?),"
            " last_ts_ms = max(coalesce(last_ts_ms, 0), ?), messages = messages + ? WHERE id = ?",
            [(last, newest, count, device) for device, (last, newest, count) in seen.items()],
        )
        seen.clear()


def _ledger_run(conn: sqlite3.Connection, batch: Sequence[Received], start: int) -> dict[int, bool]:
    """Insert the ledger rows of the sequenced readings from ``start`` up to the next job (a job must
    see the ledger as it was when it was queued) in one statement; batch index -> whether it was new."""
    indexes: list[int] = []
    rows: list[LedgerRow] = []
    for index in range(start, len(batch)):
        item = batch[index].item
        if isinstance(item, _SEQUENCED):
            indexes.append(index)
            rows.append(ledger_row(item, batch[index].received_ms))
        elif not isinstance(item, Rejection | DeviceStatus):
            break
    return dict(zip(indexes, insert_new(conn, rows), strict=True))


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
