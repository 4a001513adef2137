"""The transactional outbox: every durable change the daemon makes, in commit order, for central to pull.

Rows are appended inside the same transaction as the change they describe, so a change is in the
outbox if and only if it committed. ``seq`` is SQLite's AUTOINCREMENT rowid: strictly increasing and
never reused, even after rows are deleted, which is what a pull cursor needs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

OUTBOX_DDL = """
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    entity TEXT NOT NULL,
    body TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    kind: str  # what changed: "reading", "purchase", "device_status", ...
    entity: str  # which thing: a device id, a basket id
    body: str  # JSON


def append(conn: sqlite3.Connection, created_ms: int, entries: Iterable[OutboxEntry]) -> None:
    conn.executemany(
        "INSERT INTO outbox (created_ms, kind, entity, body) VALUES (?, ?, ?, ?)",
        ((created_ms, e.kind, e.entity, e.body) for e in entries),
    )


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    rows: int
    oldest_created_ms: int | None
    last_seq: int


def status(conn: sqlite3.Connection) -> OutboxStatus:
    rows, oldest, last = conn.execute("SELECT count(*), min(created_ms), max(seq) FROM outbox").fetchone()
    return OutboxStatus(rows=rows, oldest_created_ms=oldest, last_seq=last or 0)
