"""Backlogs for bench/central.py: a store's outbox as the feed's gzipped pages, and pulling them.

`build_backlog` turns `n` changes of a `StoreOutbox` into the pages ``GET /sync/v1/changes`` would
answer, gzipped; `build_all` builds many in worker processes (it lives here, at module level, so
`ProcessPoolExecutor` can pickle it). `pull_backlog` is one store's puller: decode each page as
central's client does and apply it with `sync.central_db.apply_page` over a pooled connection.
Imported as `bench.central_backlogs` (bench/central.py puts the repo root on sys.path).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from bench.central_outbox import HOUSEHOLDS, Row, StoreOutbox, encoder, household_ids
from sync import central_db
from sync.schemas import Change, ChangesPage

page_decoder = msgspec.json.Decoder(ChangesPage)


def page_json(store: str, feed: str, rows: list[Row], head: int, more: bool) -> bytes:
    """The feed's page, byte for byte what ``GET /sync/v1/changes`` answers (before gzip)."""
    changes = [
        Change(seq, created, kind, entity, msgspec.Raw(body)) for seq, created, kind, entity, body in rows
    ]
    return encoder.encode(ChangesPage(store, feed, changes, rows[-1][0], more, head, 0))


@dataclass
class Backlog:
    """A store's backlog as gzipped pages (the wire), and what they hold."""

    store: str
    feed: str
    pages: list[bytes]
    changes: int
    json_bytes: int
    gzip_bytes: int
    next_seq: int
    next_id: int
    kinds: dict[str, int] = field(default_factory=dict)


def build_backlog(
    index: int,
    stores: int,
    seed: int,
    n: int,
    start_ms: int,
    end_ms: int,
    page_max: int,
    seq0: int,
    ids0: int,
    aggregates: float,
) -> Backlog:
    """``n`` changes of store ``index`` created between ``start_ms`` and ``end_ms``, as gzipped pages."""
    outbox = StoreOutbox(index, stores, seed, household_ids(HOUSEHOLDS, seed), seq0, ids0, aggregates)
    rows = outbox.rows(n, start_ms, end_ms)
    if seq0 == 1:
        rows.insert(0, outbox.bundle(start_ms))
    head = rows[-1][0]
    backlog = Backlog(outbox.name, feed_of(index, seed), [], len(rows), 0, 0, outbox.seq, outbox.ids)
    for _, _, kind, _, _ in rows:
        backlog.kinds[kind] = backlog.kinds.get(kind, 0) + 1
    for at in range(0, len(rows), page_max):
        chunk = rows[at : at + page_max]
        raw = page_json(backlog.store, backlog.feed, chunk, head, at + page_max < len(rows))
        packed = zlib.compress(raw, 1)
        backlog.pages.append(packed)
        backlog.json_bytes += len(raw)
        backlog.gzip_bytes += len(packed)
    return backlog


def feed_of(index: int, seed: int) -> str:
    return hashlib.sha256(f"feed:{seed}:{index}".encode()).hexdigest()[:16]


def build_all(jobs: list[tuple[Any, ...]], workers: int) -> list[Backlog]:
    """Build backlogs in worker processes (generation is not what is measured)."""
    if workers <= 1 or len(jobs) <= 1:
        return [build_backlog(*job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(build_backlog, *zip(*jobs, strict=True), chunksize=1))


# -- applying -------------------------------------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def decode(packed: bytes) -> ChangesPage:
    """What central's client does with a page: gunzip (aiohttp) and decode (`sync.client`)."""
    return page_decoder.decode(zlib.decompress(packed))


@dataclass
class StoreRun:
    store: str
    first: float = 0.0
    last_commit: float = 0.0
    changes: int = 0
    pages: int = 0


async def pull_backlog(pool: asyncpg.Pool, backlog: Backlog, run: StoreRun) -> None:
    """One store's puller catching up: page after page, each applied over a pooled connection."""
    run.first = time.monotonic()
    for packed in backlog.pages:
        page = decode(packed)
        async with pool.acquire() as conn:
            result = await central_db.apply_page(conn, backlog.store, page, now_ms())
        run.last_commit = time.monotonic()
        run.changes += result.inserted
        run.pages += 1


async def apply_backlogs(pool: asyncpg.Pool, backlogs: list[Backlog]) -> tuple[float, list[StoreRun]]:
    runs = [StoreRun(b.store) for b in backlogs]
    t = time.monotonic()
    async with asyncio.TaskGroup() as group:
        for backlog, run in zip(backlogs, runs, strict=True):
            group.create_task(pull_backlog(pool, backlog, run), name=f"pull:{backlog.store}")
    return time.monotonic() - t, runs
