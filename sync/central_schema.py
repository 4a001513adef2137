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


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "change log, stores, totals, bundles, gaps", _v1_change_log),
)
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
