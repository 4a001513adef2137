"""The raw COPY ceiling for bench/central.py, and what apply wrote (rows and bytes of each table).

`table_stats` measures every table apply filled (rows, total and index bytes, partitions);
`copy_ceiling` COPYs the same rows into a fresh database with the same schema, over the same number of
connections, a page's share of each table per transaction: the rate apply is compared with.
Imported as `bench.central_ceiling` (bench/central.py puts the repo root on sys.path).
"""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import asyncpg

from sync import central_schema
from tests.pg_testkit import PgCluster


async def user_tables(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname"
    )
    return [r[0] for r in rows]


async def table_stats(conn: asyncpg.Connection) -> dict[str, dict[str, int]]:
    """Rows, total bytes (heap + indexes + TOAST, every partition) and index bytes of each table."""
    out: dict[str, dict[str, int]] = {}
    for table in await user_tables(conn):
        rows = await conn.fetchval(f"SELECT count(*) FROM {table}")
        total, indexes, partitions = await conn.fetchrow(
            "SELECT coalesce(sum(pg_total_relation_size(relid)), pg_total_relation_size($1::regclass)),"
            " coalesce(sum(pg_indexes_size(relid)), pg_indexes_size($1::regclass)),"
            " count(*) FILTER (WHERE isleaf AND level > 0) FROM pg_partition_tree($1::regclass)",
            table,
        )
        out[table] = {
            "rows": int(rows),
            "bytes": int(total or 0),
            "index_bytes": int(indexes or 0),
            "partitions": int(partitions or 0),
        }
    return out


async def copy_columns(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
        " AND attgenerated = '' ORDER BY attnum",
        table,
    )
    return [r[0] for r in rows]


async def fk_parents(conn: asyncpg.Connection, table: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND conrelid = $1::regclass",
        table,
    )
    return {r[0] for r in rows}


PREREQUISITES = ("schema_migrations", "stores", "streams")  # copied untimed: the stores' registrations


async def copy_ceiling(
    cluster: PgCluster,
    source_dsn: str,
    stats: dict[str, dict[str, int]],
    pages: int,
    connections: int,
    workdir: Path,
) -> dict[str, Any]:
    """COPY every row apply wrote into a fresh database with the same schema (migrated by central's own
    code, the same monthly partitions): chunk k of the change log (``page_max`` rows) and the same share
    of every other table in one transaction, ``connections`` transactions at a time. Timed: the COPYs
    only (the rows are dumped to files first)."""
    target_dsn = cluster.create_database("ceiling")
    source = await asyncpg.connect(source_dsn)
    target = await asyncpg.connect(target_dsn)
    try:
        await central_schema.migrate(target)
        partitions = await source.fetch(
            "SELECT c.relname, p.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
            " WHERE c.relkind IN ('r', 'p')"
        )
        for name, parent, bound in partitions:
            await target.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {parent} {bound}")
        for table in PREREQUISITES:
            await target.execute(f"TRUNCATE {table} CASCADE")
            dump = workdir / f"{table}.copy"
            await source.copy_from_table(table, output=str(dump))
            await target.copy_to_table(table, source=str(dump))
        await target.execute("SELECT setval(pg_get_serial_sequence('streams', 'id'), max(id)) FROM streams")
        tables = [t for t, s in stats.items() if s["rows"] and t not in PREREQUISITES]
        late = {t for t in tables if (await fk_parents(source, t)) - {"streams", "stores"}}
        columns: dict[str, list[str]] = {}
        lines: dict[str, list[bytes]] = {}
        for table in tables:
            columns[table] = await copy_columns(source, table)
            dump = workdir / f"{table}.copy"
            cols = ", ".join(columns[table])
            await source.copy_from_query(f"SELECT {cols} FROM {table}", output=str(dump))
            with dump.open("rb") as f:
                lines[table] = f.readlines()
            dump.unlink()
    finally:
        await source.close()
    chunks: list[list[tuple[str, bytes]]] = [[] for _ in range(max(pages, 1))]
    for table in tables:
        rows = lines.pop(table)
        if table in late:  # references rows of other tables: after all of them
            chunks[-1].append((table, b"".join(rows)))
            continue
        k = len(chunks)
        for i in range(k):
            part = rows[len(rows) * i // k : len(rows) * (i + 1) // k]
            if part:
                chunks[i].append((table, b"".join(part)))
    total_rows = sum(stats[t]["rows"] for t in tables)
    queue: asyncio.Queue[list[tuple[str, bytes]]] = asyncio.Queue()
    for chunk in chunks[:-1]:
        queue.put_nowait(chunk)

    async def copier(conn: asyncpg.Connection) -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            async with conn.transaction():
                for table, data in chunk:
                    await conn.copy_to_table(table, source=io.BytesIO(data), columns=columns[table])

    conns = [target] + [await asyncpg.connect(target_dsn) for _ in range(connections - 1)]
    try:
        t = time.monotonic()
        async with asyncio.TaskGroup() as group:
            for conn in conns:
                group.create_task(copier(conn))
        queue.put_nowait(chunks[-1])  # the last chunk holds the rows referencing the others
        await copier(target)
        seconds = time.monotonic() - t
        copied = 0
        for table in tables:
            copied += int(await target.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        for conn in conns:
            await conn.close()
    if copied != total_rows:
        raise SystemExit(f"ceiling copied {copied} rows, apply wrote {total_rows}")
    return {
        "tables": tables,
        "rows": total_rows,
        "transactions": len(chunks),
        "seconds": round(seconds, 2),
        "rows_per_s": round(total_rows / seconds),
    }
