"""The readings ledger: one row per accepted reading, idempotent on (device, seq, ts).

`insert_new` writes a run of readings with one ``executemany`` and tells which of them were new. The
common case (no copies) costs one statement for the whole run. When the statement reports fewer rows
than it was given, some were copies of rows already stored (a broker's redelivery) or of each other,
and it cannot say which: the run is rolled back to a savepoint and inserted row by row, which is the
exact answer. Either way the ledger holds the same rows, in the same order, as one ``INSERT OR IGNORE``
per reading would have left.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from sensors.schemas import (
    FootfallCount,
    FridgeTemperature,
    SequencedReading,
    ShelfEvent,
    ShelfWeight,
)

_INSERT = (
    "INSERT OR IGNORE INTO readings (device, kind, seq, ts_ms, received_ms, value, detail)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
LedgerRow = tuple[str, str, int, int, int, float | None, str | None]


def kind_of(r: SequencedReading) -> str:
    """The reading's kind as stored and counted (its msgspec tag: ``shelf_weight``, ``footfall``...)."""
    return type(r).__struct_config__.tag  # type: ignore[return-value]


def ledger_row(r: SequencedReading, received_ms: int) -> LedgerRow:
    value: float | None
    detail: str | None
    if isinstance(r, ShelfWeight):
        value, detail = r.grams, None
    elif isinstance(r, FridgeTemperature):
        value, detail = r.celsius, None
    elif isinstance(r, ShelfEvent):
        value, detail = float(r.count), r.action
    elif isinstance(r, FootfallCount):
        value, detail = float(r.entered - r.exited), f"{r.entered}/{r.exited}/{r.interval_s}"
    else:
        value, detail = r.total, r.basket_id
    return (r.device, kind_of(r), r.seq, r.ts_ms, received_ms, value, detail)


def insert_new(conn: sqlite3.Connection, rows: Sequence[LedgerRow]) -> list[bool]:
    """Insert ``rows`` in order inside the caller's transaction; for each, whether it was new (False: a
    copy of a row already in the ledger, or of an earlier row of ``rows``)."""
    if not rows:
        return []
    conn.execute("SAVEPOINT ledger")  # on an error the caller rolls the whole transaction back
    if conn.executemany(_INSERT, rows).rowcount == len(rows):
        conn.execute("RELEASE ledger")
        return [True] * len(rows)
    conn.execute("ROLLBACK TO ledger")
    new = [conn.execute(_INSERT, row).rowcount == 1 for row in rows]
    conn.execute("RELEASE ledger")
    return new


def reading_id(conn: sqlite3.Connection, r: SequencedReading) -> int | None:
    """The ledger row id of a reading already inserted."""
    row = conn.execute(
        "SELECT id FROM readings WHERE device = ? AND seq = ? AND ts_ms = ?", (r.device, r.seq, r.ts_ms)
    ).fetchone()
    return None if row is None else int(row[0])
