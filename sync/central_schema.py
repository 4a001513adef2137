"""Central's PostgreSQL schema, its versioned migrations, and connecting from ``[central] dsn``.

Migrations are small registered functions, applied in order, each in the transaction that records it in
``schema_migrations`` (so a crash leaves a migration wholly applied or not at all); an advisory lock keeps
two centrals starting at once from racing. Add a migration by appending to `MIGRATIONS`; never edit one
that has shipped.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from sync.errors import CentralConfigError

Migration = Callable[[asyncpg.Connection], Awaitable[None]]
_MIGRATION_LOCK = 0x5E_CE_27_1A  # pg_advisory_xact_lock key: "storeedge central migrations"


async def _v1_change_log(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        CREATE TABLE stores (
            id text PRIMARY KEY, feed text, cursor bigint NOT NULL DEFAULT 0, head bigint NOT NULL DEFAULT 0,
            changes bigint NOT NULL DEFAULT 0, last_pull_ms bigint, last_applied_ms bigint,
            newest_created_ms bigint);
        -- A stream is one store database's feed; change_log rows key on (stream, seq): two small integers,
        -- so the dedup index stays small. `changes` is the readable view.
        CREATE TABLE streams (
            id serial PRIMARY KEY, store text NOT NULL, feed text NOT NULL, UNIQUE (store, feed));
        -- body is the change's JSON byte for byte (text, not jsonb: passed through untouched, never
        -- refused for content); the warehouse tables are the queryable form.
        CREATE TABLE change_log (
            id bigint GENERATED ALWAYS AS IDENTITY, stream integer NOT NULL REFERENCES streams (id),
            seq bigint NOT NULL, kind text NOT NULL, entity text, created_ms bigint, body text,
            superseded_by bigint, received_ms bigint NOT NULL, PRIMARY KEY (stream, seq));
        CREATE INDEX change_log_id ON change_log (id);
        CREATE VIEW changes AS
            SELECT c.id, s.store, s.feed, c.seq, c.kind, c.entity, c.created_ms, c.body, c.superseded_by,
                c.received_ms
            FROM change_log c JOIN streams s ON s.id = c.stream;
        CREATE TABLE totals (
            store text NOT NULL, name text NOT NULL, value bigint NOT NULL, PRIMARY KEY (store, name));
        CREATE TABLE store_bundles (
            store text NOT NULL, kind text NOT NULL, version bigint NOT NULL, outcome text NOT NULL,
            reason text, seq bigint NOT NULL, PRIMARY KEY (store, kind));
        -- Places where central knows it cannot have everything: the store had deleted changes central
        -- asked for (central's database was restored from an older backup) or its database was replaced.
        CREATE TABLE gaps (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, store text NOT NULL, feed text,
            after bigint, resumed_after bigint, reason text NOT NULL, detected_ms bigint NOT NULL);
        """
    )


async def _v2_warehouse(conn: asyncpg.Connection) -> None:
    """The warehouse: every change materialised into relational tables in the transaction that records it
    (`sync.central_warehouse`). Households are pseudonymous ids only. The big tables are range-partitioned
    by month of their time column; partitions are created on demand (`ensure_partitions`), before the
    page's transaction. Time columns are ``timestamptz`` (partition keys) beside the store's ``*_ms``."""
    await conn.execute(
        """
        -- the household a change is about (NULL for device changes): erasure finds every row of it
        ALTER TABLE change_log ADD COLUMN household text;
        CREATE INDEX change_log_household ON change_log (household) WHERE household IS NOT NULL;
        -- changes central could not read (unknown kind, body not matching its kind, time out of range)
        -- or pages it could not read at all (seq NULL): kept with the reason, counted on the status page
        CREATE TABLE quarantine (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, store text NOT NULL, feed text,
            seq bigint, kind text, reason text NOT NULL, body text, received_ms bigint NOT NULL);
        CREATE INDEX quarantine_store ON quarantine (store, id);
        CREATE TABLE households (
            id text PRIMARY KEY, first_seen_ms bigint NOT NULL, last_seen_ms bigint NOT NULL,
            last_store text NOT NULL);
        CREATE TABLE consents (
            household text NOT NULL, purpose text NOT NULL, granted boolean NOT NULL,
            updated_ms bigint NOT NULL, store text NOT NULL, PRIMARY KEY (household, purpose));
        CREATE TABLE purchases (
            store text NOT NULL, basket_id text NOT NULL, ts timestamptz NOT NULL, ts_ms bigint NOT NULL,
            household text, lane text, total numeric(14, 2) NOT NULL, lines integer NOT NULL,
            PRIMARY KEY (store, basket_id, ts)) PARTITION BY RANGE (ts);
        CREATE INDEX purchases_household ON purchases (household, ts) WHERE household IS NOT NULL;
        CREATE INDEX purchases_store_day ON purchases (store, ts);
        CREATE TABLE purchase_items (
            store text NOT NULL, basket_id text NOT NULL, ts timestamptz NOT NULL, line integer NOT NULL,
            sku text NOT NULL, category text, qty double precision NOT NULL,
            unit_price numeric(14, 2) NOT NULL, PRIMARY KEY (store, basket_id, ts, line))
            PARTITION BY RANGE (ts);
        CREATE INDEX purchase_items_category ON purchase_items (category, ts);
        CREATE TABLE prediction_outcomes (
            store text NOT NULL, stream integer NOT NULL, seq bigint NOT NULL, scored timestamptz NOT NULL,
            household text NOT NULL, category text NOT NULL, model_version text,
            basket_model_version text, expected_days double precision, p7 double precision,
            basket_probability double precision, urgency text, list_rank integer, purchased_ms bigint,
            actual_days double precision, PRIMARY KEY (stream, seq, scored)) PARTITION BY RANGE (scored);
        CREATE INDEX prediction_outcomes_model ON prediction_outcomes (model_version, scored);
        CREATE INDEX prediction_outcomes_household ON prediction_outcomes (household, scored);
        CREATE TABLE list_feedback (
            store text NOT NULL, stream integer NOT NULL, seq bigint NOT NULL, ts_ms bigint NOT NULL,
            household text NOT NULL, category text NOT NULL, vote smallint NOT NULL, model_version text,
            PRIMARY KEY (stream, seq));
        CREATE INDEX list_feedback_household ON list_feedback (household);
        CREATE INDEX list_feedback_model ON list_feedback (model_version, ts_ms);
        CREATE TABLE alerts (
            store text NOT NULL, id bigint NOT NULL, kind text NOT NULL, subject text NOT NULL,
            severity text NOT NULL, state text NOT NULL, message text NOT NULL, opened_ms bigint NOT NULL,
            updated_ms bigint NOT NULL, resolved_ms bigint, PRIMARY KEY (store, id));
        CREATE INDEX alerts_open ON alerts (store) WHERE state != 'resolved';
        -- one row per device, minute (device time), type and subject, as compaction folds them (a controller
        -- may serve several shelves): raw readings and compaction's aggregates fold in
        CREATE TABLE sensor_minutes (
            store text NOT NULL, device text NOT NULL, minute timestamptz NOT NULL, type text NOT NULL,
            subject text NOT NULL, n integer NOT NULL, sum double precision, min double precision,
            max double precision, last double precision, last_ts_ms bigint, picks integer,
            puts integer, entered integer, exited integer,
            PRIMARY KEY (store, device, minute, type, subject))
            PARTITION BY RANGE (minute);
        CREATE TABLE device_status (
            store text NOT NULL, device text NOT NULL, online boolean NOT NULL, ts_ms bigint NOT NULL,
            PRIMARY KEY (store, device));
        CREATE TABLE bundle_reports (
            store text NOT NULL, stream integer NOT NULL, seq bigint NOT NULL, created_ms bigint NOT NULL,
            kind text NOT NULL, version bigint NOT NULL, outcome text NOT NULL, reason text,
            PRIMARY KEY (stream, seq));
        -- the erasure feed stores poll (``id`` is its cursor); a household erased again later (it came
        -- back and asked again) gets a new row
        CREATE TABLE erasures (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, household text NOT NULL,
            origin_store text NOT NULL, requested_ms bigint NOT NULL, recorded_ms bigint NOT NULL);
        CREATE INDEX erasures_household ON erasures (household, requested_ms);
        -- each store's report that it applied an erasure from the feed
        CREATE TABLE erasure_reports (
            erasure bigint NOT NULL REFERENCES erasures (id), store text NOT NULL,
            reported_ms bigint NOT NULL, PRIMARY KEY (erasure, store));
        -- each store's lag, sampled by central every minute, for the operations page's chart
        CREATE TABLE lag_samples (
            store text NOT NULL, at_ms bigint NOT NULL, behind bigint NOT NULL, lag_s double precision,
            PRIMARY KEY (store, at_ms));
        """
    )


async def _v3_experiments(conn: asyncpg.Connection) -> None:
    """A/B tests of model versions (docs/experiments.md): which experiment and arm served each outcome and
    vote, each trip against its list (the list hit rate, partitioned like the outcomes), and each store's
    experiment steps."""
    await conn.execute(
        """
        ALTER TABLE prediction_outcomes ADD COLUMN experiment text, ADD COLUMN arm text;
        CREATE INDEX prediction_outcomes_experiment ON prediction_outcomes (experiment, arm)
            WHERE experiment IS NOT NULL;
        ALTER TABLE list_feedback ADD COLUMN experiment text, ADD COLUMN arm text;
        CREATE TABLE list_outcomes (
            store text NOT NULL, stream integer NOT NULL, seq bigint NOT NULL, purchased timestamptz NOT NULL,
            household text NOT NULL, categories integer NOT NULL, on_list integer NOT NULL,
            listed integer NOT NULL, basket_model_version text, experiment text, arm text,
            PRIMARY KEY (stream, seq, purchased)) PARTITION BY RANGE (purchased);
        CREATE INDEX list_outcomes_experiment ON list_outcomes (experiment, arm, purchased)
            WHERE experiment IS NOT NULL;
        CREATE INDEX list_outcomes_household ON list_outcomes (household, purchased);
        CREATE TABLE experiment_events (
            store text NOT NULL, stream integer NOT NULL, seq bigint NOT NULL, ts_ms bigint NOT NULL,
            experiment text NOT NULL, event text NOT NULL, step integer NOT NULL,
            traffic double precision NOT NULL, reason text NOT NULL, winner text,
            PRIMARY KEY (stream, seq));
        CREATE INDEX experiment_events_experiment ON experiment_events (experiment, ts_ms);
        """
    )


async def _v4_rollouts(conn: asyncpg.Connection) -> None:
    """The rollouts central decides (`sync.central_rollout`): each experiment's step and verdict."""
    await conn.execute(
        """
        CREATE TABLE experiment_rollouts (
            id text PRIMARY KEY, started_ms bigint NOT NULL, step integer NOT NULL,
            step_started_ms bigint NOT NULL, status text NOT NULL, reason text NOT NULL,
            updated_ms bigint NOT NULL);
        """
    )


async def _v5_interactions(conn: asyncpg.Connection) -> None:
    """What shoppers do at the kiosk (analytics consent only; edge/customers/interactions.py)."""
    await conn.execute(
        """
        CREATE TABLE customer_interactions (
            store text NOT NULL, stream integer NOT NULL, seq bigint NOT NULL, ts_ms bigint NOT NULL,
            household text NOT NULL, kind text NOT NULL, subject text, basket_model_version text,
            experiment text, arm text, PRIMARY KEY (stream, seq));
        CREATE INDEX customer_interactions_household ON customer_interactions (household, ts_ms);
        CREATE INDEX customer_interactions_experiment ON customer_interactions (experiment, arm, ts_ms)
            WHERE experiment IS NOT NULL;
        """
    )


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "change log, stores, totals, bundles, gaps", _v1_change_log),
    (2, "warehouse tables, quarantine, erasure feed, lag samples", _v2_warehouse),
    (3, "experiments: arms on outcomes and votes, list outcomes, experiment events", _v3_experiments),
    (4, "rollouts decided at central", _v4_rollouts),
    (5, "customer interactions", _v5_interactions),
)
PARTITIONED = {  # table -> its partition key (monthly ranges)
    "purchases": "ts",
    "purchase_items": "ts",
    "prediction_outcomes": "scored",
    "list_outcomes": "purchased",
    "sensor_minutes": "minute",
}
SCHEMA_VERSION = MIGRATIONS[-1][0]


async def migrate(conn: asyncpg.Connection) -> int:
    """Apply every migration not yet recorded; returns the schema version. Refuses a newer database."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for version, name, migration in MIGRATIONS:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            if await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", version):
                continue
            await migration(conn)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
    newest = int(await conn.fetchval("SELECT max(version) FROM schema_migrations"))
    if newest > SCHEMA_VERSION:
        raise CentralConfigError(
            f"central schema version {newest} is newer than this code ({SCHEMA_VERSION})"
        )
    return newest


# -- [central] dsn -------------------------------------------------------------------------------------

_KEYWORDS = {  # libpq key -> asyncpg.connect argument
    "host": "host",
    "hostaddr": "host",
    "port": "port",
    "dbname": "database",
    "user": "user",
    "password": "password",
    "sslmode": "ssl",
    "connect_timeout": "timeout",
    "application_name": "",
}
_PAIR = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']+)")


def connect_args(dsn: str) -> dict[str, Any]:
    """``[central] dsn`` -> asyncpg.connect keyword arguments. A libpq URI (``postgresql://...``) is passed
    through; key=value (``host=... port=... dbname=...``) is translated (asyncpg only parses URIs).
    Raises ValueError saying what is wrong."""
    text = dsn.strip()
    if text.startswith(("postgresql://", "postgres://")):
        parts = urllib.parse.urlsplit(text)
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port in URI: {exc}") from None
        return {"dsn": text}
    if "://" in text:
        raise ValueError("a URI must start with postgresql:// or postgres://")
    args: dict[str, Any] = {}
    settings: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = _PAIR.match(text, pos)
        if match is None:
            raise ValueError(f"expected key=value at {text[pos:].strip()[:20]!r}")
        key, value = match.group(1), match.group(2)
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if key not in _KEYWORDS:
            raise ValueError(f"unknown key {key!r} (known: {', '.join(sorted(_KEYWORDS))})")
        if key == "application_name":
            settings[key] = value
        elif key in {"port", "connect_timeout"}:
            if not value.isdigit():
                raise ValueError(f"{key} must be a number, not {value!r}")
            args[_KEYWORDS[key]] = int(value)
        else:
            args[_KEYWORDS[key]] = value
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    if not args:
        raise ValueError("empty")
    if settings:
        args["server_settings"] = settings
    return args


def describe_target(dsn: str) -> str:
    """``host:port`` for error messages (never the password)."""
    args = connect_args(dsn)
    if "dsn" in args:
        parts = urllib.parse.urlsplit(args["dsn"])
        host = parts.hostname or urllib.parse.parse_qs(parts.query).get("host", ["localhost"])[0]
        return f"{host}:{parts.port or 5432}"
    return f"{args.get('host', 'localhost')}:{args.get('port', 5432)}"


# -- monthly partitions ----------------------------------------------------------------------------

Month = tuple[int, int]  # (year, month)
_PARTITION_LOCK = 0x5E_CE_27_1B  # pg_advisory_xact_lock key: "storeedge partition creation"


def partition_name(table: str, month: Month) -> str:
    return f"{table}_{month[0]:04d}m{month[1]:02d}"


def _month_bounds(month: Month) -> tuple[str, str]:
    year, mon = month
    after = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return f"{year:04d}-{mon:02d}-01 00:00:00+00", f"{after[0]:04d}-{after[1]:02d}-01 00:00:00+00"


async def ensure_partitions(conn: asyncpg.Connection, wanted: dict[str, set[Month]]) -> int:
    """Create the monthly partitions ``wanted`` ({table: {(year, month)}}) that do not exist yet; returns
    how many were created. One query when all exist (the usual case). Creation runs in its own short
    transaction under an advisory lock, before a page's transaction: creating a partition locks its
    parent, and doing that inside two stores' page transactions at once could deadlock them."""
    names = {partition_name(t, m): (t, m) for t, months in wanted.items() for m in months}
    if not names:
        return 0
    missing = await conn.fetch(
        "SELECT n FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NULL", sorted(names)
    )
    created = 0
    for (name,) in missing:
        table, month = names[name]
        low, high = _month_bounds(month)
        # IF NOT EXISTS as well as the lock: a to_regclass in a transaction that began before another
        # central's CREATE committed can still say "missing" (seen: DuplicateTableError when several
        # stores' first pages of a month arrived together).
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _PARTITION_LOCK)
                if not await conn.fetchval("SELECT to_regclass($1) IS NULL", name):
                    continue
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table}"
                    f" FOR VALUES FROM ('{low}') TO ('{high}')"
                )
        except asyncpg.DuplicateTableError:
            continue
        created += 1
    return created
