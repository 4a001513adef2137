"""The transactional outbox: every durable change the daemon makes, in commit order, for central to pull.

Rows are appended inside the same transaction as the change they describe, so a change is in the
outbox if and only if it committed. ``seq`` is SQLite's AUTOINCREMENT rowid: strictly increasing and
never reused, even after rows are deleted, which is what a pull cursor needs. There is one writer, so
seqs also become visible in order: a reader never sees seq N+1 without seq N (unless N was removed by
an ack or by compaction, which only ever remove rows and add rows with new, higher seqs).

`SYNC_DDL` (schema v2) adds ``sync_state``: the feed id, the durable ack cursor and running totals of
what is pending, and ``bundle_events``: what the store did with bundles from central. Rows are deleted
once central acks them: an ack means central has committed them.

Pending totals (schema v8, `edge.store.migrations`): ``pending_rows``/``pending_bytes`` count the rows with
``seq > acked_seq``, kept exactly by the code that changes them, once per statement rather than by
per-row triggers (v2 had triggers; deleting acked rows fired one per row inside the writer's
transaction, 7x the cost of the delete itself): `append` adds its batch, an ack subtracts the range it
covers (`sync.feed.apply_ack`), `remove` subtracts what it deletes, and deleting rows already acked
(`sync.feed.trim_acked`) changes nothing. **Anything that inserts into or deletes from ``outbox`` must
go through `append` / `remove`**; `tests/sync/test_sync_totals.py` recounts after every operation.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
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

# What a row costs, for the pending-bytes total and the compaction bound: its text in bytes plus a fixed
# overhead of 16 for the seq, timestamp and SQLite's record header. `row_cost` is the same in Python.
ROW_COST_SQL = "length(CAST(body AS BLOB)) + length(CAST(entity AS BLOB)) + length(kind) + 16"

SYNC_DDL: tuple[str, ...] = (
    """CREATE TABLE sync_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        feed TEXT NOT NULL,
        acked_seq INTEGER NOT NULL DEFAULT 0,
        acked_ms INTEGER,
        pending_rows INTEGER NOT NULL DEFAULT 0,
        pending_bytes INTEGER NOT NULL DEFAULT 0,
        compacted_rows INTEGER NOT NULL DEFAULT 0,
        aggregates_written INTEGER NOT NULL DEFAULT 0,
        compact_floor INTEGER NOT NULL DEFAULT 0,
        last_compaction_ms INTEGER)""",
    # The feed id changes only if the database is replaced: central uses it to tell a new store database
    # (whose seqs restart at 1) from the one it has been pulling.
    """INSERT INTO sync_state (id, feed, pending_rows, pending_bytes)
        SELECT 1, lower(hex(randomblob(16))), count(*), coalesce(sum(
            length(CAST(body AS BLOB)) + length(CAST(entity AS BLOB)) + length(kind) + 16), 0)
        FROM outbox""",
    # v2 kept the totals with these two per-row triggers; v8 drops them (see the module docstring).
    """CREATE TRIGGER outbox_pending_insert AFTER INSERT ON outbox BEGIN
        UPDATE sync_state SET pending_rows = pending_rows + 1, pending_bytes = pending_bytes
            + length(CAST(NEW.body AS BLOB)) + length(CAST(NEW.entity AS BLOB)) + length(NEW.kind) + 16
        WHERE id = 1;
    END""",
    """CREATE TRIGGER outbox_pending_delete AFTER DELETE ON outbox BEGIN
        UPDATE sync_state SET pending_rows = pending_rows - 1, pending_bytes = pending_bytes
            - length(CAST(OLD.body AS BLOB)) - length(CAST(OLD.entity AS BLOB)) - length(OLD.kind) - 16
        WHERE id = 1;
    END""",
    """CREATE TABLE bundle_events (
        id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, kind TEXT NOT NULL, version INTEGER NOT NULL,
        sha256 TEXT NOT NULL, outcome TEXT NOT NULL CHECK (outcome IN ('activated', 'refused', 'rolled_back')),
        reason TEXT, detail TEXT)""",
    "CREATE INDEX bundle_events_kind ON bundle_events (kind, id)",
)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    kind: str  # what changed: "reading", "purchase", "device_status", ...
    entity: str  # which thing: a device id, a basket id
    body: str  # JSON


def row_cost(kind: str, entity: str, body: str) -> int:
    """`ROW_COST_SQL` of a row not stored yet (``length(kind)`` counts characters, as SQLite does)."""
    return len(body.encode()) + len(entity.encode()) + len(kind) + 16


def append(conn: sqlite3.Connection, created_ms: int, entries: Iterable[OutboxEntry]) -> None:
    """Append rows (new seqs, above everything) and add them to the pending totals: one UPDATE per call.
    Inside the caller's write transaction."""
    rows = list(entries)
    if not rows:
        return
    conn.executemany(
        "INSERT INTO outbox (created_ms, kind, entity, body) VALUES (?, ?, ?, ?)",
        ((created_ms, e.kind, e.entity, e.body) for e in rows),
    )
    _add_pending(conn, len(rows), sum(row_cost(e.kind, e.entity, e.body) for e in rows))


def remove(conn: sqlite3.Connection, seqs: Sequence[int]) -> int:
    """Delete outbox rows by seq (compaction, erasure) keeping the pending totals exact; returns how many
    were deleted. Rows already acked are deleted too but were no longer pending. Inside the caller's
    write transaction."""
    acked = conn.execute("SELECT acked_seq FROM sync_state WHERE id = 1").fetchone()[0]
    deleted = pending = size = 0
    for i in range(0, len(seqs), _REMOVE_CHUNK):
        chunk = tuple(seqs[i : i + _REMOVE_CHUNK])
        marks = ",".join("?" * len(chunk))
        n, b = conn.execute(
            f"SELECT count(*), coalesce(sum({ROW_COST_SQL}), 0) FROM outbox"  # noqa: S608 - placeholders only
            f" WHERE seq IN ({marks}) AND seq > ?",
            (*chunk, acked),
        ).fetchone()
        pending, size = pending + n, size + b
        deleted += conn.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", chunk).rowcount  # noqa: S608
    _add_pending(conn, -pending, -size)
    return deleted


def pending_between(conn: sqlite3.Connection, low: int, high: int) -> tuple[int, int]:
    """(rows, bytes) of the outbox rows with ``low < seq <= high``: what an ack from ``low`` to ``high``
    takes off the pending totals. A range scan of the primary key."""
    rows, size = conn.execute(
        f"SELECT count(*), coalesce(sum({ROW_COST_SQL}), 0) FROM outbox WHERE seq > ? AND seq <= ?",  # noqa: S608
        (low, high),
    ).fetchone()
    return int(rows), int(size)


def _add_pending(conn: sqlite3.Connection, rows: int, size: int) -> None:
    if rows or size:
        conn.execute(
            "UPDATE sync_state SET pending_rows = pending_rows + ?, pending_bytes = pending_bytes + ?"
            " WHERE id = 1",
            (rows, size),
        )


_REMOVE_CHUNK = 500  # seqs per statement, well under SQLite's bound-parameter limit


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """How far behind central is. ``rows``/``oldest_created_ms`` count what is still in the outbox, which
    is exactly what central has not acked (acked rows are deleted)."""

    rows: int
    oldest_created_ms: int | None
    last_seq: int  # the newest seq ever issued (0 before the first change)
    pending_bytes: int = 0
    acked_seq: int = 0
    acked_ms: int | None = None
    feed: str = ""
    compacted_rows: int = 0
    aggregates_written: int = 0

    def oldest_age_s(self, now_ms: int | None = None) -> float | None:
        if self.oldest_created_ms is None:
            return None
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return max(0.0, (now - self.oldest_created_ms) / 1000)


def head(conn: sqlite3.Connection) -> int:
    """The newest seq ever issued, including rows since deleted (0 before the first change)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    return int(row[0]) if row else 0


def status(conn: sqlite3.Connection) -> OutboxStatus:
    """O(1) on a schema with ``sync_state``: the running totals (rows above the ack cursor, schema v8)
    and one index probe for the oldest pending row. A count on a bare v1 schema."""
    try:
        state = conn.execute(
            "SELECT pending_rows, pending_bytes, acked_seq, acked_ms, feed, compacted_rows, aggregates_written"
            " FROM sync_state WHERE id = 1"
        ).fetchone()
    except sqlite3.OperationalError:  # schema v1: no sync_state yet
        state = None
    if state is None:
        rows = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        oldest_row = conn.execute("SELECT created_ms FROM outbox ORDER BY seq LIMIT 1").fetchone()
        return OutboxStatus(
            rows=rows, oldest_created_ms=oldest_row[0] if oldest_row else None, last_seq=head(conn)
        )
    rows, pending_bytes, acked, acked_ms, feed, compacted, aggregates = state
    oldest_row = conn.execute(
        "SELECT created_ms FROM outbox WHERE seq > ? ORDER BY seq LIMIT 1", (acked,)
    ).fetchone()
    oldest = int(oldest_row[0]) if oldest_row else None
    return OutboxStatus(
        rows=rows,
        oldest_created_ms=oldest,
        last_seq=head(conn),
        pending_bytes=pending_bytes,
        acked_seq=acked,
        acked_ms=acked_ms,
        feed=feed,
        compacted_rows=compacted,
        aggregates_written=aggregates,
    )
