"""Forward-only schema migrations. Each is a small registered function, applied in the same
transaction as the row that records it, so a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.store.quarantine import CardRedactor
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


@migration(6, "customers")
def _v6(conn: sqlite3.Connection) -> None:
    for ddl in (
        # Consent per household and purpose; no row = never asked. Erasure deletes the rows.
        """CREATE TABLE consents (
            household TEXT NOT NULL, purpose TEXT NOT NULL CHECK (purpose IN ('personalisation', 'analytics')),
            granted INTEGER NOT NULL CHECK (granted IN (0, 1)), updated_ms INTEGER NOT NULL,
            PRIMARY KEY (household, purpose))""",
        # Every read of a household's data through the API (who, what, when).
        """CREATE TABLE access_log (
            id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, household TEXT NOT NULL,
            route TEXT NOT NULL, role TEXT NOT NULL)""",
        "CREATE INDEX access_log_household ON access_log (household, ts_ms)",
        "CREATE INDEX access_log_ts ON access_log (ts_ms)",
        # Thumbs up/down on shopping-list items, with the model version that produced the list.
        """CREATE TABLE list_feedback (
            id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, household TEXT NOT NULL, category TEXT NOT NULL,
            vote INTEGER NOT NULL CHECK (vote IN (-1, 1)), model_version TEXT)""",
        "CREATE INDEX list_feedback_household ON list_feedback (household)",
        # Erasures done here (the pseudonym only, which is meaningless without the chain key): so the
        # audit trail shows that a request was honoured, and when.
        "CREATE TABLE erasures (household TEXT PRIMARY KEY, erased_ms INTEGER NOT NULL)",
    ):
        conn.execute(ddl)


@migration(7, "predictions")
def _v7(conn: sqlite3.Connection) -> None:
    # edge/predictions/tables.py writes these; docs/models.md ("Serving") describes them.
    for ddl in (
        # The cached scores of households with personalisation consent, one row per own category.
        # origin_day: the store-local day the forecast counts from (day 0); list_rank: place on the list.
        """CREATE TABLE predictions (
            household TEXT NOT NULL, category TEXT NOT NULL, purchases INTEGER NOT NULL,
            p1 REAL, p2 REAL, p7 REAL, p14 REAL, p_horizon REAL, expected_days REAL,
            days_p10 REAL, days_p50 REAL, days_p90 REAL, confidence REAL,
            basket_probability REAL NOT NULL, urgency TEXT NOT NULL, reason TEXT, list_rank INTEGER,
            model_version TEXT NOT NULL, basket_model_version TEXT NOT NULL, scored_ms INTEGER NOT NULL,
            origin_day INTEGER NOT NULL, utc_offset_min INTEGER NOT NULL,
            PRIMARY KEY (household, category)) WITHOUT ROWID""",
        # What happened to a prediction: the first purchase of its category after it was made.
        """CREATE TABLE prediction_outcomes (
            id INTEGER PRIMARY KEY, household TEXT NOT NULL, category TEXT NOT NULL,
            model_version TEXT NOT NULL, basket_model_version TEXT NOT NULL, scored_ms INTEGER NOT NULL,
            origin_day INTEGER NOT NULL, expected_days REAL, p7 REAL, basket_probability REAL NOT NULL,
            urgency TEXT NOT NULL, list_rank INTEGER, purchased_ms INTEGER NOT NULL,
            actual_days INTEGER NOT NULL, recorded_ms INTEGER NOT NULL,
            UNIQUE (household, category, scored_ms))""",
        "CREATE INDEX prediction_outcomes_recorded ON prediction_outcomes (recorded_ms)",
        # Households whose history changed since they were scored (a purchase, consent granted).
        "CREATE TABLE rescore_queue (household TEXT PRIMARY KEY, queued_ms INTEGER NOT NULL)",
        """CREATE TABLE shelf_forecasts (
            shelf TEXT PRIMARY KEY, items INTEGER NOT NULL, minutes_to_empty REAL, empty_at_ms INTEGER,
            baseline_minutes REAL, model_version TEXT NOT NULL, scored_ms INTEGER NOT NULL)""",
        """CREATE TABLE prediction_runs (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL, started_ms INTEGER NOT NULL,
            finished_ms INTEGER NOT NULL, households INTEGER NOT NULL, rows INTEGER NOT NULL,
            model_version TEXT NOT NULL)""",
        # The generic list (the store's most bought categories this week) and shelf pick windows.
        "CREATE INDEX purchases_ts ON purchases (ts_ms)",
        "CREATE INDEX shelf_changes_ts ON shelf_changes (ts_ms)",
    ):
        conn.execute(ddl)


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


@migration(8, "outbox_bulk_totals")
def _v8(conn: sqlite3.Connection) -> None:
    # The outbox's pending totals are kept by sync.outbox (one UPDATE per batch, ack and compaction step)
    # instead of per-row triggers: deleting acked rows fired one per row inside the writer's transaction,
    # 7x the cost of the delete itself. They now count the rows above the ack cursor (acked rows waiting
    # to be deleted are not pending), recounted here once.
    conn.execute("DROP TRIGGER IF EXISTS outbox_pending_insert")
    conn.execute("DROP TRIGGER IF EXISTS outbox_pending_delete")
    conn.execute(
        """UPDATE sync_state SET (pending_rows, pending_bytes) = (
            SELECT count(*), coalesce(sum(
                length(CAST(body AS BLOB)) + length(CAST(entity AS BLOB)) + length(kind) + 16), 0)
            FROM outbox WHERE seq > sync_state.acked_seq)
        WHERE id = 1"""
    )


@migration(9, "quarantine_privacy")
def _v9(conn: sqlite3.Connection) -> None:
    # Purchases stored as the till sent them but flagged for staff (edge/store/quarantine.py), e.g. a total
    # that disagrees with the lines; bounded like quarantine by [retention] quarantine_max_rows.
    conn.execute(
        """CREATE TABLE suspicious (
            id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, ts_ms INTEGER NOT NULL,
            device TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,
            purchase_id INTEGER REFERENCES purchases(id) ON DELETE CASCADE)"""
    )
    conn.execute("CREATE INDEX suspicious_reason ON suspicious (reason)")
    # Quarantine rows written before card numbers were redacted: redact them now. The pseudonym key is
    # not at hand here, so cards become "[card]" rather than a household pseudonym; secure_delete
    # zeroes the old bytes where SQLite frees or rewrites them instead of leaving them in free pages.
    (secure,) = conn.execute("PRAGMA secure_delete").fetchone()
    conn.execute("PRAGMA secure_delete = ON")
    try:
        redactor = CardRedactor(None)
        rows = conn.execute("SELECT id, origin, device, detail, payload FROM quarantine").fetchall()
        for row_id, origin, device, detail, payload in rows:
            conn.execute(
                "UPDATE quarantine SET origin = ?, device = ?, detail = ?, payload = ? WHERE id = ?",
                (
                    redactor.redact_text(origin),
                    None if device is None else redactor.redact_text(device),
                    redactor.redact_text(detail),
                    None if payload is None else redactor.redact(bytes(payload)),
                    row_id,
                ),
            )
    finally:
        conn.execute(f"PRAGMA secure_delete = {int(secure)}")


# Keep this last: migration 9 (quarantine) registers above it, and versions must register in order.
@migration(10, "session_revocations")
def _v10(conn: sqlite3.Connection) -> None:
    # edge/http/sessions.py: ended sessions and "forget me" (every session of a household), kept only until
    # no token they cover can still be valid; read back at start, so a revocation survives a restart.
    conn.execute(
        """CREATE TABLE session_revocations (
            subject TEXT PRIMARY KEY, revoked_ms INTEGER NOT NULL, until_ms INTEGER NOT NULL)"""
    )
    conn.execute("CREATE INDEX session_revocations_until ON session_revocations (until_ms)")
    # A refused read is audited too: why (NULL: the read was served).
    conn.execute("ALTER TABLE access_log ADD COLUMN refused TEXT")


@migration(11, "erasure_feed")
def _v11(conn: sqlite3.Connection) -> None:
    # edge/uplink/erasures.py: how far this store has applied central's erasure feed (the id of the last
    # entry applied). Moved in the transaction that erases the household, so a crash between two entries
    # neither skips nor repeats one.
    conn.execute("CREATE TABLE erasure_feed (id INTEGER PRIMARY KEY CHECK (id = 1), cursor INTEGER NOT NULL)")
    conn.execute("INSERT INTO erasure_feed (id, cursor) VALUES (1, 0)")


@migration(12, "experiments")
def _v12(conn: sqlite3.Connection) -> None:
    # edge/experiments/ (docs/experiments.md, "On the store"): which experiment and arm served each cached
    # prediction, outcome and vote (NULL: the store's own models, in no experiment) ...
    for table in ("predictions", "prediction_outcomes", "list_feedback"):
        conn.execute(f"ALTER TABLE {table} ADD COLUMN experiment TEXT")
        conn.execute(f"ALTER TABLE {table} ADD COLUMN arm TEXT")
    # ... each trip of a consenting household against the list it was shown (the list hit rate) ...
    conn.execute(
        """CREATE TABLE list_outcomes (
            id INTEGER PRIMARY KEY, household TEXT NOT NULL, purchased_ms INTEGER NOT NULL,
            categories INTEGER NOT NULL, on_list INTEGER NOT NULL, listed INTEGER NOT NULL,
            basket_model_version TEXT, experiment TEXT, arm TEXT, scored_ms INTEGER NOT NULL,
            recorded_ms INTEGER NOT NULL, UNIQUE (household, purchased_ms))"""
    )
    conn.execute("CREATE INDEX list_outcomes_experiment ON list_outcomes (experiment, arm, purchased_ms)")
    conn.execute("CREATE INDEX list_outcomes_recorded ON list_outcomes (recorded_ms)")
    conn.execute("CREATE INDEX prediction_outcomes_experiment ON prediction_outcomes (experiment, arm)")
    # ... the state of each experiment this store has run (the rollout's step and verdict) ...
    conn.execute(
        """CREATE TABLE experiments (
            id TEXT PRIMARY KEY, definition TEXT NOT NULL, bundle_version INTEGER,
            state TEXT NOT NULL, step INTEGER NOT NULL, step_started_ms INTEGER NOT NULL,
            started_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, reason TEXT NOT NULL DEFAULT '',
            winner TEXT)"""
    )
    # ... and the cost of scoring per arm (the latency and error guardrails), one row per scored step.
    conn.execute(
        """CREATE TABLE experiment_scoring (
            id INTEGER PRIMARY KEY, experiment TEXT NOT NULL, arm TEXT NOT NULL, ts_ms INTEGER NOT NULL,
            households INTEGER NOT NULL, wall_ms REAL NOT NULL, cpu_ms REAL NOT NULL,
            errors INTEGER NOT NULL)"""
    )
    conn.execute("CREATE INDEX experiment_scoring_arm ON experiment_scoring (experiment, arm, ts_ms)")


@migration(13, "past_gap")
def _v13(conn: sqlite3.Connection) -> None:
    # edge/predictions/lists.py: whether the household was past its usual gap for the category when it was
    # scored, so the list's days left agree with its reason (models/shopping_list.py, "Days left agree").
    conn.execute("ALTER TABLE predictions ADD COLUMN past_gap INTEGER NOT NULL DEFAULT 0")


@migration(14, "customer_interactions")
def _v14(conn: sqlite3.Connection) -> None:
    # edge/customers/interactions.py: what shoppers do at the kiosk, with analytics consent only, with the
    # model version, experiment and arm whose list they were looking at.
    conn.execute(
        """CREATE TABLE customer_interactions (
            id INTEGER PRIMARY KEY, household TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT,
            ts_ms INTEGER NOT NULL, basket_model_version TEXT, experiment TEXT, arm TEXT,
            recorded_ms INTEGER NOT NULL)"""
    )
    conn.execute(
        "CREATE INDEX customer_interactions_household ON customer_interactions (household, recorded_ms)"
    )
    conn.execute("CREATE INDEX customer_interactions_ts ON customer_interactions (ts_ms)")


@migration(15, "customer_scores")
def _v15(conn: sqlite3.Connection) -> None:
    # edge/customers/scores.py and insights*.py: CLV, churn and segment per household, and its cached
    # insights document; analytics consent only, deleted with it (docs/customers.md, "Insights").
    conn.execute(
        """CREATE TABLE customer_scores (
            household TEXT PRIMARY KEY, expected_trips_90d REAL NOT NULL, expected_spend_90d REAL NOT NULL,
            p_alive REAL NOT NULL, p_churn REAL NOT NULL, churn_band TEXT NOT NULL, churn_reason TEXT NOT NULL,
            clv REAL NOT NULL, clv_horizon_days INTEGER NOT NULL, segment TEXT, model_version TEXT NOT NULL,
            segments_version TEXT, scored_ms INTEGER NOT NULL)"""
    )
    conn.execute("CREATE INDEX customer_scores_segment ON customer_scores (segment)")
    conn.execute(
        "CREATE TABLE customer_insights (household TEXT PRIMARY KEY, document TEXT NOT NULL,"
        " computed_ms INTEGER NOT NULL)"
    )


@migration(16, "history_chunks")
def _v16(conn: sqlite3.Connection) -> None:
    # edge/store/history_cache.py: the households' purchases packed per household for the nightly jobs.
    conn.execute(
        "CREATE TABLE history_chunks (household TEXT NOT NULL, first_id INTEGER NOT NULL,"
        " last_id INTEGER NOT NULL, categories TEXT NOT NULL, lines BLOB NOT NULL, trips BLOB NOT NULL,"
        " PRIMARY KEY (household, first_id)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE history_cache_state (id INTEGER PRIMARY KEY CHECK (id = 1), upto_id INTEGER NOT NULL)"
    )


@migration(17, "history_categories")
def _v17(conn: sqlite3.Connection) -> None:
    # edge/store/history_categories.py: the categories each household bought, beside the packed history,
    # filled from the purchases the cache already holds (those up to its watermark).
    conn.execute(
        "CREATE TABLE history_categories (household TEXT NOT NULL, category TEXT NOT NULL,"
        " last_ms INTEGER NOT NULL, PRIMARY KEY (household, category)) WITHOUT ROWID"
    )
    conn.execute(
        "INSERT INTO history_categories (household, category, last_ms)"
        " SELECT p.household, i.category, max(p.ts_ms) FROM purchases p"
        " JOIN purchase_items i ON i.purchase_id = p.id"
        " WHERE p.household IS NOT NULL AND i.category IS NOT NULL"
        " AND p.id <= (SELECT coalesce(max(upto_id), 0) FROM history_cache_state)"
        " GROUP BY p.household, i.category"
    )
