"""Alerts: raised from signals, deduplicated per (kind, subject), acknowledged and resolved.

Whatever detects a condition emits an `AlertSignal` (active or not). `apply_signals` turns signals into
state in the `alerts` table inside the writer's transaction: a new active condition opens an alert, a
repeated one only refreshes it (no new notification), an inactive one resolves it. Hysteresis is the
detector's job: it emits "inactive" only once the condition is clearly over.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Literal

import msgspec

AlertKind = Literal[
    "low_stock", "empty_shelf", "stockout_soon", "misplaced_item", "fridge_excursion",
    "device_offline", "sensor_silent", "sensor_stuck", "queue_pressure", "stockout_predicted",
]  # fmt: skip
Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class AlertSignal:
    kind: AlertKind
    subject: str  # shelf id, fridge id, device id
    active: bool
    severity: Severity = "warning"
    message: str = ""
    detail: dict[str, object] = field(default_factory=dict)


class AlertEvent(msgspec.Struct, frozen=True):
    """An alert as published on MQTT `store/{id}/alerts/{kind}`, pushed on /api/v1/events and listed."""

    id: int
    kind: str
    subject: str
    severity: str
    state: str  # open, acked, resolved
    message: str
    opened_ms: int
    updated_ms: int
    detail: dict[str, object] = {}
    acked_ms: int | None = None
    acked_by: str | None = None
    resolved_ms: int | None = None
    resolved_by: str | None = None


@dataclass(frozen=True, slots=True)
class AlertBatch:
    """What a maintenance job returns when it raised or resolved alerts (so they get published)."""

    events: list[AlertEvent]


_COLUMNS = (
    "id, kind, subject, severity, state, message, opened_ms, updated_ms, detail, acked_ms, acked_by,"
    " resolved_ms, resolved_by"
)


def _event(row: tuple[object, ...]) -> AlertEvent:
    values = list(row)
    values[8] = json.loads(str(values[8]))
    return AlertEvent(*values)  # type: ignore[arg-type]


def apply_signals(conn: sqlite3.Connection, signals: list[AlertSignal], now_ms: int) -> list[AlertEvent]:
    """Persist signals; return the alerts that opened, changed severity or resolved (to publish)."""
    changed: list[AlertEvent] = []
    for s in signals:
        row = conn.execute(
            "SELECT id, severity FROM alerts WHERE kind = ? AND subject = ? AND state != 'resolved'",
            (s.kind, s.subject),
        ).fetchone()
        if s.active and row is None:
            cursor = conn.execute(
                "INSERT INTO alerts (kind, subject, severity, state, message, detail, opened_ms, updated_ms)"
                " VALUES (?, ?, ?, 'open', ?, ?, ?, ?)",
                (s.kind, s.subject, s.severity, s.message, json.dumps(s.detail), now_ms, now_ms),
            )
            changed.append(_load(conn, int(cursor.lastrowid or 0)))
        elif s.active and row is not None:
            conn.execute(
                "UPDATE alerts SET message = ?, detail = ?, severity = ?, updated_ms = ? WHERE id = ?",
                (s.message, json.dumps(s.detail), s.severity, now_ms, row[0]),
            )
            if row[1] != s.severity:
                changed.append(_load(conn, row[0]))
        elif not s.active and row is not None:
            conn.execute(
                "UPDATE alerts SET state = 'resolved', resolved_ms = ?, resolved_by = 'auto', updated_ms = ?"
                " WHERE id = ?",
                (now_ms, now_ms, row[0]),
            )
            changed.append(_load(conn, row[0]))
    return changed


def acknowledge(conn: sqlite3.Connection, alert_id: int, by: str, now_ms: int) -> AlertEvent | None:
    updated = conn.execute(
        "UPDATE alerts SET state = 'acked', acked_ms = ?, acked_by = ?, updated_ms = ? WHERE id = ? AND state = 'open'",
        (now_ms, by, now_ms, alert_id),
    ).rowcount
    return _load(conn, alert_id) if updated else None


def resolve(conn: sqlite3.Connection, alert_id: int, by: str, now_ms: int) -> AlertEvent | None:
    updated = conn.execute(
        "UPDATE alerts SET state = 'resolved', resolved_ms = ?, resolved_by = ?, updated_ms = ?"
        " WHERE id = ? AND state != 'resolved'",
        (now_ms, by, now_ms, alert_id),
    ).rowcount
    return _load(conn, alert_id) if updated else None


def _load(conn: sqlite3.Connection, alert_id: int) -> AlertEvent:
    row = conn.execute(f"SELECT {_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)).fetchone()  # noqa: S608
    return _event(row)


def list_alerts(conn: sqlite3.Connection, state: str | None, limit: int) -> list[AlertEvent]:
    args: tuple[str, ...] = ()
    if state == "active":
        where = "state != 'resolved'"
    elif state is None:
        where = "1"
    else:
        where, args = "state = ?", (state,)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE {where} ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed fragments
        (*args, limit),
    ).fetchall()
    return [_event(r) for r in rows]
