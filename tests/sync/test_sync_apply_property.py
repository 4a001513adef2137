"""Property: duplicated, reordered and replayed pages never change central's final state.

A real store database generates the history (raw readings, purchases, compaction into aggregates with new
seqs, pages read by the real feed code at arbitrary moments); central applies the pages once in order,
and again from scratch in a random order with duplicates. Both final states must be identical, and equal
to the truth counted independently from what the store ingested."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import central_db
from sync.central_schema import migrate
from sync.compaction import CompactionPolicy, compact_chunk
from sync.feed import OutboxCursor, read_page
from sync.outbox import OutboxEntry
from sync.schemas import ChangesPage
from tests.pg_testkit import PgCluster
from tests.sync.sync_helpers import add_changes, reading_entry, store_db

T0 = 1_764_547_200_000  # 2025-12-01 UTC: the store's clock starts here

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("raw"), st.integers(1, 30), st.integers(0, 2**16)),
        st.tuples(st.just("purchase"), st.integers(1, 5000), st.just(0)),
        st.tuples(st.just("compact"), st.integers(0, 100), st.just(0)),
        st.tuples(st.just("pull"), st.integers(1, 25), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


def generate(
    db: sqlite3.Connection, ops: list[tuple[str, int, int]]
) -> tuple[list[ChangesPage], Counter[str]]:
    truth: Counter[str] = Counter()
    pages: list[ChangesPage] = []
    cursor = 0
    clock = T0
    device_seq: Counter[str] = Counter()
    for op, n, seed in ops:
        clock += 60_000
        if op == "raw":
            rng = random.Random(seed)
            entries = []
            for _ in range(n):
                kind = rng.choice(["shelf_event", "footfall", "shelf_weight", "fridge_temperature"])
                device = f"dev-{rng.randint(1, 3)}"
                device_seq[device] += 1
                ts = clock + rng.randint(-120_000, 0)
                if kind == "shelf_event":
                    action, amount = rng.choice(["pick", "put"]), rng.randint(1, 4)
                    entries.append(
                        reading_entry(
                            kind, device, ts, device_seq[device], shelf="A1-1", action=action, count=amount
                        )
                    )
                    truth["picks" if action == "pick" else "puts"] += amount
                elif kind == "footfall":
                    e, x = rng.randint(0, 9), rng.randint(0, 9)
                    entries.append(
                        reading_entry(
                            kind,
                            device,
                            ts,
                            device_seq[device],
                            zone="z",
                            entered=e,
                            exited=x,
                            interval_s=60.0,
                        )
                    )
                    truth["people_in"] += e
                    truth["people_out"] += x
                else:
                    field = "grams" if kind == "shelf_weight" else "celsius"
                    entries.append(
                        reading_entry(
                            kind,
                            device,
                            ts,
                            device_seq[device],
                            shelf="A1-1",
                            unit="F1",
                            **{field: rng.uniform(0, 10)},
                        )
                    )
                truth["sensor_readings"] += 1
            add_changes(db, entries, created_ms=clock)
        elif op == "purchase":
            body = {"basket_id": f"b{clock}", "ts_ms": clock, "total": n / 100, "household": None,
                    "items": [{"sku": "1001", "qty": 1, "unit_price": n / 100, "category": "milk"}]}  # fmt: skip
            add_changes(db, [OutboxEntry("purchase", f"b{clock}", json.dumps(body))], created_ms=clock)
            truth["purchases"] += 1
            truth["revenue_cents"] += n
        elif op == "compact":
            # compact readings created more than n% of the elapsed time ago
            policy = CompactionPolicy(max_bytes=1 << 40, max_age_ms=max(1, (clock - T0) * n // 100))
            db.execute("BEGIN IMMEDIATE")
            while not compact_chunk(db, policy, clock, for_size=False).done:
                pass
            db.execute("COMMIT")
        else:
            page = read_page(db, OutboxCursor(cursor, n), store="s", max_bytes=1 << 20)
            pages.append(page)
            cursor = page.next
    while True:  # central catches up in the end
        page = read_page(db, OutboxCursor(cursor, 7), store="s", max_bytes=1 << 20)
        pages.append(page)
        cursor = page.next
        if not page.more:
            break
    return pages, truth


async def final_state(conn: asyncpg.Connection) -> dict[str, Any]:
    changes = await conn.fetch(
        "SELECT store, feed, seq, kind, entity, created_ms, body, superseded_by FROM changes"
    )
    return {
        "changes": sorted(tuple(r) for r in changes),
        "totals": await central_db.totals(conn, "s"),
        "store": [tuple(r) for r in await conn.fetch("SELECT feed, cursor, head, changes FROM stores")],
        "bundles": [tuple(r) for r in await conn.fetch("SELECT * FROM store_bundles")],
        # the warehouse: per device-minute, as if only raw readings or only aggregates had come
        "minutes": sorted(
            tuple(round(v, 6) if isinstance(v, float) else v for v in r)
            for r in await conn.fetch(
                "SELECT device, minute, type, subject, n, sum, min, max, picks, puts, entered, exited"
                " FROM sensor_minutes"
            )
        ),
        "purchases": sorted(tuple(r) for r in await conn.fetch("SELECT basket_id, ts, total FROM purchases")),
        "quarantine": await conn.fetchval("SELECT count(*) FROM quarantine"),
    }


_TEMPLATES: dict[str, Path] = {}


def fresh(kind: str, path: Path, factory: pytest.TempPathFactory | None = None) -> sqlite3.Connection:
    """A new empty store database, copied from one made once (creating a schema costs fsyncs)."""
    if kind not in _TEMPLATES:
        folder = (factory.mktemp("templates") if factory else path.parent) / f"template-{kind}.db"
        store_db(folder).close()
        _TEMPLATES[kind] = folder
    shutil.copyfile(_TEMPLATES[kind], path)
    conn = store_db(path)
    conn.execute("PRAGMA synchronous = OFF")  # durability is not what these tests are about
    return conn


@contextlib.asynccontextmanager
async def central(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """Central's database, migrated and emptied (one database per test, reused across examples)."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await conn.execute(
            "TRUNCATE stores, streams, change_log, totals, store_bundles, gaps, sensor_minutes, purchases,"
            " purchase_items, households, quarantine RESTART IDENTITY"
        )
        yield conn
    finally:
        await conn.close()


def apply_all(dsn: str, pages: list[ChangesPage]) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with central(dsn) as conn:
            for page in pages:
                await central_db.apply_page(conn, "s", page, 0)
            return await final_state(conn)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def module_dsn(pg_cluster: PgCluster) -> str:
    return pg_cluster.create_database()


@settings(max_examples=60)
@given(ops=OPS, chaos=st.randoms(use_true_random=False), extra=st.integers(0, 10))
def test_duplicated_reordered_and_replayed_pages_never_change_the_final_state(
    tmp_path_factory: pytest.TempPathFactory,
    module_dsn: str,
    ops: list[tuple[str, int, int]],
    chaos: random.Random,
    extra: int,
) -> None:
    work = tmp_path_factory.mktemp("prop")
    db = fresh("store", work / "store.db", tmp_path_factory)
    try:
        pages, truth = generate(db, ops)
    finally:
        db.close()
    in_order = apply_all(module_dsn, pages)
    shuffled = pages + [chaos.choice(pages) for _ in range(extra)]
    chaos.shuffle(shuffled)
    assert apply_all(module_dsn, shuffled) == in_order
    # and it is the truth: every raw reading counted once, in its raw row or in its aggregate
    effective = {k: v for k, v in in_order["totals"].items() if not k.startswith("changes:")}
    assert effective == {k: v for k, v in truth.items() if v}
    # and so is the warehouse: the minutes add up to every reading, the purchases are all there
    minutes = in_order["minutes"]
    assert sum(m[4] for m in minutes) == truth["sensor_readings"]
    for column, name in ((8, "picks"), (9, "puts"), (10, "people_in"), (11, "people_out")):
        assert sum(m[column] or 0 for m in minutes) == truth[name], name
    assert all(m[4] > 0 for m in minutes)  # no minute emptied by taking raw rows back
    assert len(in_order["purchases"]) == truth["purchases"]
    assert in_order["quarantine"] == 0
    # every seq the store ever issued is accounted for exactly once (held, superseded or an aggregate)
    seqs = [row[2] for row in in_order["changes"]]
    assert len(seqs) == len(set(seqs))


async def test_the_property_catches_a_central_that_applies_a_page_twice(
    tmp_path: Path, central_dsn: str
) -> None:
    db = store_db(tmp_path / "store.db")
    pages, _ = generate(db, [("raw", 10, 1), ("pull", 5, 0), ("purchase", 250, 0)])
    db.close()
    async with central(central_dsn) as conn:
        first = await central_db.apply_page(conn, "s", pages[0], 0)
        again = await central_db.apply_page(conn, "s", pages[0], 0)
        assert (first.inserted, again.inserted, again.duplicates) == (5, 0, 5)
        assert (await central_db.totals(conn, "s"))["sensor_readings"] == 5


async def test_raw_rows_central_already_holds_are_superseded_by_their_aggregate(
    tmp_path: Path, central_dsn: str
) -> None:
    db = store_db(tmp_path / "store.db")
    # central pulls 6 raw readings, then the store compacts everything (ack still in flight), then more
    pages, truth = generate(db, [("raw", 12, 3), ("pull", 6, 0), ("compact", 0, 0), ("raw", 4, 4)])
    db.close()
    kinds = Counter(c.kind for p in pages for c in p.changes)
    assert kinds["reading_aggregate"] > 0
    assert kinds["reading"] == 6 + 4
    async with central(central_dsn) as conn:
        results = [await central_db.apply_page(conn, "s", page, 0) for page in pages]
        assert sum(r.superseded for r in results) == 6
        totals = {
            k: v for k, v in (await central_db.totals(conn, "s")).items() if not k.startswith("changes:")
        }
        assert totals == {k: v for k, v in truth.items() if v}
        held = await conn.fetchval("SELECT count(*) FROM changes WHERE kind = 'reading'")
        assert held == 4  # the 6 early raw rows were replaced by their aggregates, the 4 late ones stand
