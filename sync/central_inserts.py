"""Multi-row inserts for the warehouse (`sync.central_warehouse`): each table's columns with their
PostgreSQL types, and `insert`, one ``INSERT ... SELECT FROM unnest(...)`` round trip for all rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

Columns = Sequence[tuple[str, str]]
QUARANTINE: Columns = (("store", "text"), ("feed", "text"), ("seq", "int8"), ("kind", "text"),
                        ("reason", "text"), ("body", "text"), ("received_ms", "int8"))  # fmt: skip
HOUSEHOLDS: Columns = (
    ("id", "text"),
    ("first_seen_ms", "int8"),
    ("last_seen_ms", "int8"),
    ("last_store", "text"),
)
PURCHASES: Columns = (("store", "text"), ("basket_id", "text"), ("ts", "timestamptz"), ("ts_ms", "int8"),
                       ("household", "text"), ("lane", "text"), ("total", "float8"), ("lines", "int4"))  # fmt: skip
ITEMS: Columns = (("store", "text"), ("basket_id", "text"), ("ts", "timestamptz"), ("line", "int4"),
                   ("sku", "text"), ("category", "text"), ("qty", "float8"), ("unit_price", "float8"))  # fmt: skip
CONSENTS: Columns = (("household", "text"), ("purpose", "text"), ("granted", "bool"), ("updated_ms", "int8"),
                      ("store", "text"))  # fmt: skip
ALERTS: Columns = (("store", "text"), ("id", "int8"), ("kind", "text"), ("subject", "text"),
                    ("severity", "text"), ("state", "text"), ("message", "text"), ("updated_ms", "int8"),
                    ("opened_ms", "int8"), ("resolved_ms", "int8"))  # fmt: skip
DEVICES: Columns = (("store", "text"), ("device", "text"), ("online", "bool"), ("ts_ms", "int8"))
MINUTES: Columns = (("store", "text"), ("device", "text"), ("minute", "timestamptz"), ("type", "text"),
                     ("subject", "text"), ("n", "int4"), ("sum", "float8"), ("min", "float8"), ("max", "float8"),
                     ("last", "float8"), ("last_ts_ms", "int8"), ("picks", "int4"), ("puts", "int4"),
                     ("entered", "int4"), ("exited", "int4"))  # fmt: skip


async def insert(
    conn: asyncpg.Connection,
    table: str,
    columns: Columns,
    rows: Sequence[tuple[Any, ...]],
    conflict: str = "",
) -> None:
    """``INSERT INTO table (...) SELECT * FROM unnest($1::t[], ...) <conflict>``: one round trip for all rows."""
    if not rows:
        return
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(columns, start=1))
    await conn.execute(
        f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {conflict}",  # noqa: S608 (fixed names)
        *(list(column) for column in zip(*rows, strict=True)),
    )
