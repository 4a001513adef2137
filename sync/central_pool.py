"""Central's PostgreSQL connections: an asyncpg pool that connects and migrates first (errors name the
config key and the server), and what a lost or restarting database raises (`DB_ERRORS`), which every
part of central treats as "try again later"."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from sync import central_schema
from sync.errors import CentralConfigError

T = TypeVar("T")
RunDb = Callable[[Callable[[asyncpg.Connection], Awaitable[T]]], Awaitable[T]]

DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


class CentralDb:
    """Central's PostgreSQL connections (an asyncpg pool). A connection broken by a server restart is
    dropped by the pool when the failing call returns it; the next call connects again, so the pullers'
    backoff loop is the reconnect loop."""

    def __init__(self, dsn: str, origin: str = "central config", connect_timeout_s: float = 3.0) -> None:
        self._args = central_schema.connect_args(dsn)
        # A plan per execution: asyncpg caches prepared statements, and PostgreSQL's generic plan, chosen
        # while change_log was young and small, kept scanning it whole once it had grown (seen: 68 of 85 s
        # of a catch-up in one such SELECT). Planning these small statements costs ~0.1 ms each.
        self._args.setdefault("server_settings", {})["plan_cache_mode"] = "force_custom_plan"
        self._where = f"{origin}: [central] dsn"
        self._target = central_schema.describe_target(dsn)
        self._timeout = connect_timeout_s
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        """Connect and migrate; errors name the config key and the server."""
        try:
            conn = await asyncpg.connect(**{"timeout": self._timeout, **self._args})
        except (*DB_ERRORS, ValueError) as exc:
            raise CentralConfigError(f"{self._where}: cannot connect to {self._target}: {exc}") from exc
        try:
            await central_schema.migrate(conn)
            self._pool = await asyncpg.create_pool(
                min_size=1, max_size=4, **{"timeout": self._timeout, **self._args}
            )
        except DB_ERRORS as exc:
            raise CentralConfigError(
                f"{self._where}: cannot migrate central's schema on {self._target}: {exc}"
            ) from exc
        finally:
            await conn.close()

    async def run(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        if self._pool is None:
            raise CentralConfigError(f"{self._where}: database not open")
        async with self._pool.acquire() as conn:
            return await fn(conn)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except (*DB_ERRORS,):
                pool.terminate()
