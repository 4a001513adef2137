"""Applying a batch of ingested items to the store, inside one transaction.

For each accepted reading: the ledger row (idempotent on (device, seq, ts)), the derived state it
changes (shelf stock, fridge temperature, zone occupancy, purchases) and its outbox row. Rejections go
to quarantine. Derived "latest" state only moves forward in time, so late and out-of-order readings are
stored but never overwrite a newer value.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from edge.privacy import Pseudonymiser
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


@dataclass(slots=True)
class BatchOutcome:
    stored: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    job_results: list[object] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Received:
    """One item for the writer, stamped with when the daemon received it."""

    item: Reading | Rejection | MaintenanceJob
    received_ms: int


class BatchApplier:
    def __init__(
        self, planogram: Planogram, pseudonymiser: Pseudonymiser, quarantine_max_rows: int = 10_000
    ) -> None:
        self._planogram = planogram
        self._pseudonymiser = pseudonymiser
        self._quarantine_max_rows = quarantine_max_rows

    def apply(self, conn: sqlite3.Connection, batch: Sequence[Received], now_ms: int) -> BatchOutcome:
        """Apply ``batch`` in one transaction; on any error roll back and re-raise (nothing half-done)."""
        outcome = BatchOutcome()
        outbox: list[OutboxEntry] = []
        seen: dict[str, tuple[int, int, int]] = {}  # device -> (last received, newest ts, count)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for received in batch:
                item = received.item
                if isinstance(item, Rejection):
                    self._quarantine(conn, item, received.received_ms)
                    outcome.rejected[item.reason.value] += 1
                elif isinstance(item, DeviceStatus):
                    self._device_status(conn, item, outbox)
                    outcome.stored["device_status"] += 1
                elif isinstance(item, _SEQUENCED):
                    if self._reading(conn, item, received.received_ms, outbox):
                        outcome.stored[_kind(item)] += 1
                        last, newest, count = seen.get(item.device, (0, 0, 0))
                        seen[item.device] = (
                            max(last, received.received_ms),
                            max(newest, item.ts_ms),
                            count + 1,
                        )
                    else:
                        outcome.duplicates += 1
                else:
                    outcome.job_results.append(item(conn))
            conn.executemany(
                "UPDATE devices SET last_seen_ms = max(coalesce(last_seen_ms, 0), ?),"
                " last_ts_ms = max(coalesce(last_ts_ms, 0), ?), messages = messages + ? WHERE id = ?",
                [(last, newest, count, device) for device, (last, newest, count) in seen.items()],
            )
            append(conn, now_ms, outbox)
            if outcome.rejected:
                # Keep quarantine bounded on every write, not just at housekeeping: a device spewing
                # garbage must not be able to fill the disk between two housekeeping runs.
                conn.execute(
                    "DELETE FROM quarantine WHERE id <= (SELECT max(id) FROM quarantine) - ?",
                    (self._quarantine_max_rows,),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
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
            column = "picks" if r.action == "pick" else "puts"
            conn.execute(
                f"UPDATE shelf_state SET {column} = {column} + ?, event_ms = max(coalesce(event_ms, 0), ?)"  # noqa: S608 - column is one of two literals
                " WHERE shelf = ?",
                (r.count, r.ts_ms, r.shelf),
            )
            outbox.append(OutboxEntry("reading", r.device, _json.encode(r).decode()))
        elif isinstance(r, FridgeTemperature):
            conn.execute(
                "INSERT INTO fridge_state (unit, celsius, ts_ms) VALUES (?, ?, ?) ON CONFLICT (unit) DO UPDATE"
                " SET celsius = excluded.celsius, ts_ms = excluded.ts_ms WHERE excluded.ts_ms >= fridge_state.ts_ms",
                (r.unit, r.celsius, r.ts_ms),
            )
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
            outbox.append(OutboxEntry("reading", r.device, _json.encode(r).decode()))
        else:
            self._purchase(conn, r, reading_id, outbox)
        return True

    def _shelf_weight(self, conn: sqlite3.Connection, r: ShelfWeight) -> None:
        shelf = self._planogram.shelves[r.shelf]
        items = max(0, round((r.grams - shelf.tare_grams) / shelf.unit_grams))
        conn.execute(
            "INSERT INTO shelf_state (shelf, grams, items, ts_ms) VALUES (?, ?, ?, ?) ON CONFLICT (shelf)"
            " DO UPDATE SET grams = excluded.grams, items = excluded.items, ts_ms = excluded.ts_ms"
            " WHERE excluded.ts_ms >= shelf_state.ts_ms",
            (r.shelf, r.grams, items, r.ts_ms),
        )

    def _purchase(
        self, conn: sqlite3.Connection, r: PosTransaction, reading_id: int | None, outbox: list[OutboxEntry]
    ) -> None:
        household = self._pseudonymiser.household_id(r.loyalty_id) if r.loyalty_id else None
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
            "items": [{"sku": i.sku, "qty": i.qty, "unit_price": i.unit_price} for i in r.items],
        }
        outbox.append(OutboxEntry("purchase", r.basket_id, _json.encode(body).decode()))

    def _device_status(self, conn: sqlite3.Connection, s: DeviceStatus, outbox: list[OutboxEntry]) -> None:
        cursor = conn.execute(
            "UPDATE devices SET online = ?, status_ms = ? WHERE id = ? AND coalesce(status_ms, 0) <= ?",
            (int(s.online), s.ts_ms, s.device, s.ts_ms),
        )
        if cursor.rowcount:
            outbox.append(OutboxEntry("device_status", s.device, _json.encode(s).decode()))

    def _quarantine(self, conn: sqlite3.Connection, r: Rejection, received_ms: int) -> None:
        conn.execute(
            "INSERT INTO quarantine (received_ms, source, origin, device, reason, detail, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (received_ms, r.source.value, r.origin, r.device, r.reason.value, r.detail[:1000], r.payload),
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
            "INSERT OR REPLACE INTO shelves (id, aisle, zone, sku, capacity, unit_grams, tare_grams, transport, fridge)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (s.id, s.aisle, s.zone, s.sku, s.capacity, s.unit_grams, s.tare_grams, s.transport, s.fridge)
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
