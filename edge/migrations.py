"""Forward-only schema migrations. Each is a small registered function, applied in the same
transaction as the row that records it, so a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from sync.outbox import OUTBOX_DDL, SYNC_DDL


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sqlite3.Connection], None]


MIGRATIONS: list[Migration] = []


def migration(version: int, name: str) -> Callable[[Callable[[sqlite3.Connection], None]], None]:
    def register(fn: Callable[[sqlite3.Connection], None]) -> None:
        if MIGRATIONS and MIGRATIONS[-1].version >= version:
            raise RuntimeError(f"migration {version} registered out of order")
        MIGRATIONS.append(Migration(version, name, fn))

    return register


@migration(1, "foundation")
def _v1(conn: sqlite3.Connection) -> None:
    for ddl in (
        """CREATE TABLE devices (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL,
            online INTEGER, status_ms INTEGER, last_seen_ms INTEGER, last_ts_ms INTEGER,
            messages INTEGER NOT NULL DEFAULT 0)""",
        # The ledger of accepted sequenced messages. UNIQUE(device, seq, ts_ms) makes ingest idempotent:
        # a redelivered message is the same triple; a device that rebooted and restarted its seq is not.
        """CREATE TABLE readings (
            id INTEGER PRIMARY KEY, device TEXT NOT NULL, kind TEXT NOT NULL, seq INTEGER NOT NULL,
            ts_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, value REAL, detail TEXT,
            UNIQUE (device, seq, ts_ms))""",
        "CREATE INDEX readings_ts ON readings (ts_ms)",
        "CREATE INDEX readings_device_ts ON readings (device, ts_ms)",
        """CREATE TABLE products (
            sku TEXT PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
            unit_grams REAL NOT NULL, storage TEXT NOT NULL)""",
        """CREATE TABLE shelves (
            id TEXT PRIMARY KEY, aisle TEXT NOT NULL, zone TEXT NOT NULL, sku TEXT NOT NULL,
            capacity INTEGER NOT NULL, unit_grams REAL NOT NULL, tare_grams REAL NOT NULL,
            transport TEXT NOT NULL, fridge TEXT)""",
        """CREATE TABLE shelf_state (
            shelf TEXT PRIMARY KEY, grams REAL, items INTEGER, ts_ms INTEGER NOT NULL,
            picks INTEGER NOT NULL DEFAULT 0, puts INTEGER NOT NULL DEFAULT 0, event_ms INTEGER)""",
        "CREATE TABLE fridges (id TEXT PRIMARY KEY, storage TEXT NOT NULL, min_c REAL NOT NULL, max_c REAL NOT NULL)",
        "CREATE TABLE fridge_state (unit TEXT PRIMARY KEY, celsius REAL NOT NULL, ts_ms INTEGER NOT NULL)",
        "CREATE TABLE zones (id TEXT PRIMARY KEY, capacity INTEGER NOT NULL, checkout INTEGER NOT NULL)",
        """CREATE TABLE zone_occupancy (
            zone TEXT PRIMARY KEY, occupancy INTEGER NOT NULL, entered_total INTEGER NOT NULL,
            exited_total INTEGER NOT NULL, ts_ms INTEGER NOT NULL)""",
        # Households are pseudonymous: id is the keyed hash of the loyalty id, never the id itself.
        """CREATE TABLE households (
            id TEXT PRIMARY KEY, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
            purchases INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE purchases (
            id INTEGER PRIMARY KEY, reading_id INTEGER NOT NULL UNIQUE REFERENCES readings(id),
            lane TEXT NOT NULL, basket_id TEXT NOT NULL, household TEXT, ts_ms INTEGER NOT NULL,
            total REAL NOT NULL, lines INTEGER NOT NULL)""",
        "CREATE INDEX purchases_household ON purchases (household, ts_ms)",
        """CREATE TABLE purchase_items (
            purchase_id INTEGER NOT NULL REFERENCES purchases(id) ON DELETE CASCADE, line INTEGER NOT NULL,
            sku TEXT NOT NULL, category TEXT, qty REAL NOT NULL, unit_price REAL NOT NULL,
            PRIMARY KEY (purchase_id, line))""",
        """CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, source TEXT NOT NULL,
            origin TEXT NOT NULL, device TEXT, reason TEXT NOT NULL, detail TEXT NOT NULL, payload BLOB)""",
        "CREATE INDEX quarantine_reason ON quarantine (reason)",
        OUTBOX_DDL,
    ):
        conn.execute(ddl)


@migration(2, "sync")
def _v2(conn: sqlite3.Connection) -> None:
    # sync_state (feed id, durable ack cursor, pending totals kept by triggers) and bundle_events.
    for ddl in SYNC_DDL:
        conn.execute(ddl)


@migration(3, "store_state")
def _v3(conn: sqlite3.Connection) -> None:
    for ddl in (
        # What the shelf signal processing knows (edge/state/shelf_signal.py); items is now the settled count.
        "ALTER TABLE shelf_state ADD COLUMN settled INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE shelf_state ADD COLUMN offset_g REAL NOT NULL DEFAULT 0",
        "ALTER TABLE shelf_state ADD COLUMN misplaced_g REAL NOT NULL DEFAULT 0",
        "ALTER TABLE shelf_state ADD COLUMN stuck INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE shelf_state ADD COLUMN pick_rate_per_h REAL",
        "ALTER TABLE shelf_state ADD COLUMN stockout_ms INTEGER",
        "ALTER TABLE shelf_state ADD COLUMN reported_picks INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE shelf_state ADD COLUMN reported_puts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE fridge_state ADD COLUMN out_since_ms INTEGER",
        "ALTER TABLE fridge_state ADD COLUMN in_since_ms INTEGER",
        # Picks, put-backs, restocks and misplaced items detected from weight steps.
        """CREATE TABLE shelf_changes (
            id INTEGER PRIMARY KEY, shelf TEXT NOT NULL, kind TEXT NOT NULL, items INTEGER NOT NULL,
            grams REAL NOT NULL, ts_ms INTEGER NOT NULL)""",
        "CREATE INDEX shelf_changes_shelf_ts ON shelf_changes (shelf, ts_ms)",
        """CREATE TABLE alerts (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL, severity TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('open', 'acked', 'resolved')),
            message TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}',
            opened_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, acked_ms INTEGER, acked_by TEXT,
            resolved_ms INTEGER, resolved_by TEXT)""",
        # Deduplication: at most one unresolved alert per (kind, subject).
        "CREATE UNIQUE INDEX alerts_one_active ON alerts (kind, subject) WHERE state != 'resolved'",
        "CREATE INDEX alerts_state ON alerts (state, opened_ms)",
    ):
        conn.execute(ddl)


@migration(4, "footfall")
def _v4(conn: sqlite3.Connection) -> None:
    # Per zone and hour: people in and out, the busiest moment, and person-seconds spent in the zone
    # (occupancy integrated over time), from which mean occupancy and dwell follow (Little's law).
    conn.execute(
        """CREATE TABLE footfall_hourly (
            zone TEXT NOT NULL, hour_ms INTEGER NOT NULL, entered INTEGER NOT NULL DEFAULT 0,
            exited INTEGER NOT NULL DEFAULT 0, peak_occupancy INTEGER NOT NULL DEFAULT 0,
            person_seconds REAL NOT NULL DEFAULT 0, observed_s REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (zone, hour_ms))"""
    )


@migration(5, "shelf_layout")
def _v5(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE shelves ADD COLUMN facings INTEGER NOT NULL DEFAULT 1")
    conn.execute("ALTER TABLE shelves ADD COLUMN mixed_with TEXT NOT NULL DEFAULT ''")  # comma-separated SKUs


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)"
    )
    (version,) = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(version)


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply every registered migration the database has not recorded; return the versions applied.

    Missing versions are applied even below the highest recorded one (a branch may land a lower
    number after a higher one was applied somewhere). The connection must be in autocommit mode
    (isolation_level=None) so each migration gets its own explicit transaction."""
    applied = []
    current_version(conn)  # creates the bookkeeping table
    known = {int(v) for (v,) in conn.execute("SELECT version FROM schema_migrations")}
    latest = MIGRATIONS[-1].version if MIGRATIONS else 0
    if known and max(known) > latest:
        raise RuntimeError(f"database schema version {max(known)} is newer than this storeedge ({latest})")
    for step in MIGRATIONS:
        if step.version in known:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            step.apply(conn)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)",
                (step.version, step.name, int(time.time() * 1000)),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(step.version)
    return applied
