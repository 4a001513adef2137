"""Opening the SQLite store: WAL, full fsync on commit, foreign keys, migrated to the latest schema."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from edge.errors import StoreError
from edge.store.migrations import migrate


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode; callers open explicit transactions (BEGIN IMMEDIATE)."""
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            # Durability is the promise: a commit is on disk before we acknowledge to the broker.
            conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open database: {exc}") from exc
    return conn


def open_store(path: Path) -> sqlite3.Connection:
    conn = connect(path)
    try:
        migrate(conn)
    except (sqlite3.Error, RuntimeError) as exc:
        conn.close()
        raise StoreError(f"{path}: cannot migrate database: {exc}") from exc
    return conn


T = TypeVar("T")


class ReadThread:
    """A read-only connection on its own thread: WAL lets it read while the writer commits, and a query
    never blocks the event loop or the writer. Each reader (API, sync feed) has its own, so a long
    page build does not queue the API's reads behind it."""

    def __init__(self, db_path: Path, name: str) -> None:
        self._db_path = db_path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    async def run(self, query: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                self._conn = connect(self._db_path, readonly=True)
            return query(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)
