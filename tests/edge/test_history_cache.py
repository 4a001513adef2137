"""The packed purchase history (`edge.store.history_cache`): whatever was refreshed, merged, interrupted
or erased, reading it gives exactly the lines and trips the purchase tables hold, and the full rescore's
`load_lines_cached` exactly what `load_lines` reads; the store-wide counts read through it equal those
counted over every line."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge.customers.privacy import Pseudonymiser
from edge.customers.tables import erase_household
from edge.metrics import IngestMetrics
from edge.predictions.aggregates import store_aggregates, store_aggregates_from_tables
from edge.predictions.tables import load_lines, load_lines_cached
from edge.store import history_cache, history_read
from edge.store.apply import BatchApplier
from edge.store.db import open_store
from edge.store.history_refresh import HistoryCache
from edge.store.writer import StoreWriter
from edge.uplink.erasures import store_household_hooks
from sensors.planogram import load_planogram
from simulators.household_history import DEMO_PLANOGRAM

CATEGORIES = ("milk", "bread", "eggs", "coffee", "soup", "pet-food")
DAY_MS = 86_400_000


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    path = tmp_path / "store.db"
    conn = open_store(path)
    yield path, conn
    conn.close()


class Shop:
    """Purchases written straight into the tables, as the batch applier leaves them."""

    def __init__(self, conn: sqlite3.Connection, seed: int) -> None:
        self.conn = conn
        self.rng = random.Random(seed)
        self.seq = 0

    def buy(self, household: str | None, ts_ms: int) -> None:
        self.seq += 1
        reading = self.conn.execute(
            "INSERT INTO readings (device, kind, seq, ts_ms, received_ms) VALUES ('till-1', 'pos', ?, ?, ?)",
            (self.seq, ts_ms, ts_ms),
        ).lastrowid
        lines = self.rng.randint(1, 5)
        purchase = self.conn.execute(
            "INSERT INTO purchases (reading_id, lane, basket_id, household, ts_ms, total, lines)"
            " VALUES (?, 'lane-1', ?, ?, ?, ?, ?)",
            (reading, f"b{self.seq}", household, ts_ms, round(self.rng.uniform(1, 90), 2), lines),
        ).lastrowid
        for line in range(lines):
            category = self.rng.choice([*CATEGORIES, None])  # a line without a category is not kept
            qty = self.rng.choice([1.0, 2.0, 0.5, -1.0])  # a return (qty < 0) is kept, `load_lines` drops it
            self.conn.execute(
                "INSERT INTO purchase_items (purchase_id, line, sku, category, qty, unit_price)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (purchase, line, f"sku-{line}", category, qty, round(self.rng.uniform(0.2, 9.0), 2)),
            )

    def shop_days(self, households: list[str], first_day: int, days: int, chance: float = 0.4) -> None:
        for day in range(first_day, first_day + days):
            for household in households:
                if self.rng.random() < chance:
                    self.buy(household, day * DAY_MS + self.rng.randint(8, 20) * 3_600_000)
            self.buy(None, day * DAY_MS + 3_600_000)  # an anonymous sale: never in the cache


def expected(
    conn: sqlite3.Connection, households: list[str], since_ms: int
) -> tuple[list[tuple], list[tuple]]:
    marks = ",".join("?" * len(households))
    trips = conn.execute(
        f"SELECT household, id, ts_ms, total FROM purchases WHERE household IN ({marks}) AND ts_ms >= ?"
        " ORDER BY id",
        (*households, since_ms),
    ).fetchall()
    lines = conn.execute(
        "SELECT p.household, p.id, p.ts_ms, i.category, i.qty, i.unit_price FROM purchases p"
        f" JOIN purchase_items i ON i.purchase_id = p.id WHERE p.household IN ({marks}) AND p.ts_ms >= ?"
        " AND i.category IS NOT NULL ORDER BY p.id, i.line",
        (*households, since_ms),
    ).fetchall()
    return trips, lines


def cached(conn: sqlite3.Connection, households: list[str], since_ms: int) -> tuple[list[tuple], list[tuple]]:
    conn.execute("BEGIN")
    try:
        h = history_read.read_history(conn, households, since_ms)
    finally:
        conn.execute("COMMIT")
    names = h.households
    trips = [
        (names[o], int(p), int(t), float(v))
        for o, p, t, v in zip(h.trip_owner, h.trip_purchase, h.trip_ts, h.trip_total, strict=True)
    ]
    lines = [
        (names[o], int(p), int(t), h.categories[c], float(q), float(v))
        for o, p, t, c, q, v in zip(
            h.line_owner, h.line_purchase, h.line_ts, h.line_category, h.line_qty, h.line_price, strict=True
        )
    ]
    return trips, lines


def same(conn: sqlite3.Connection, households: list[str], since_ms: int) -> None:
    want_trips, want_lines = expected(conn, households, since_ms)
    got_trips, got_lines = cached(conn, households, since_ms)
    assert sorted(got_trips, key=lambda r: r[1]) == want_trips  # the order is the consumers' to choose
    assert sorted(got_lines, key=lambda r: (r[1], r[3], r[4], r[5])) == sorted(
        want_lines, key=lambda r: (r[1], r[3], r[4], r[5])
    )
    assert got_trips, "the test must read something"
    same_store_counts(conn, since_ms)


def same_store_counts(conn: sqlite3.Connection, since_ms: int) -> None:
    """The store-wide counts through the cache's category table equal those counted over every line."""
    want_categories, want = store_aggregates_from_tables(conn, since_ms)
    got_categories, got = store_aggregates(conn, since_ms)
    assert got == want
    assert want.active_households > 0
    assert sum(want.households_by_category.values()) > 0
    products = {c for (c,) in conn.execute("SELECT category FROM products")}
    # Categories only anonymous sales bought are not in it; every bought or sold one is.
    assert set(got_categories) == set(want.households_by_category) | products
    assert set(got_categories) <= set(want_categories)


def refresh(conn: sqlite3.Connection, keep_since_ms: int, *, step: int = 3, finish: bool = True) -> None:
    upto, top = history_cache.watermark(conn), history_cache.newest_purchase(conn)
    households = history_cache.households_with_new(conn, upto, top)
    for start in range(0, len(households), step):
        rows, merge = history_cache.read_step(conn, households[start : start + step], upto, top)
        packed = history_cache.pack_step(rows, merge, keep_since_ms)
        with conn:
            conn.execute("BEGIN")
            history_cache.write_step(conn, packed)
    if finish:
        with conn:
            conn.execute("BEGIN")
            history_cache.set_watermark(conn, top)


def test_reads_are_exact_before_between_and_after_refreshes_and_merges(
    db: tuple[Path, sqlite3.Connection],
) -> None:
    _, conn = db
    shop = Shop(conn, seed=1)
    households = [f"h{n:02d}" for n in range(9)]
    shop.shop_days(households, first_day=100, days=20)
    same(conn, households, 0)  # nothing cached yet: all from the tables
    refresh(conn, 0)
    same(conn, households, 0)
    assert history_cache.watermark(conn) == history_cache.newest_purchase(conn)
    for night in range(history_cache.MAX_CHUNKS + 3):  # enough nights for every household to merge
        shop.shop_days(households, first_day=120 + night, days=1)
        same(conn, households, 0)  # the tail above the watermark comes from the tables
        refresh(conn, 0)
        same(conn, households, 0)
        same(conn, households, (110 + night) * DAY_MS)  # a window: only what is in it
    chunks = dict(
        conn.execute("SELECT household, count(*) FROM history_chunks GROUP BY household").fetchall()
    )
    assert max(chunks.values()) <= history_cache.MAX_CHUNKS
    assert min(chunks.values()) < history_cache.MAX_CHUNKS - 1  # merges happened


def test_a_refresh_interrupted_after_some_steps_counts_nothing_twice(
    db: tuple[Path, sqlite3.Connection],
) -> None:
    _, conn = db
    shop = Shop(conn, seed=2)
    households = [f"h{n:02d}" for n in range(7)]
    for night in range(history_cache.MAX_CHUNKS + 2):
        shop.shop_days(households, first_day=200 + night, days=1)
        refresh(conn, 0, finish=night % 3 != 1)  # every third night the process dies before the watermark
        same(conn, households, 0)
    refresh(conn, 0)
    same(conn, households, 0)


def test_merging_drops_lines_older_than_the_window_and_reads_stay_exact_inside_it(
    db: tuple[Path, sqlite3.Connection],
) -> None:
    _, conn = db
    shop = Shop(conn, seed=3)
    households = [f"h{n:02d}" for n in range(5)]
    shop.shop_days(households, first_day=300, days=30)
    refresh(conn, 0)
    for night in range(history_cache.MAX_CHUNKS + 1):
        shop.shop_days(households, first_day=330 + night, days=1, chance=1.0)  # a chunk each night
        refresh(conn, 320 * DAY_MS)
    same(conn, households, 320 * DAY_MS)
    (oldest,) = conn.execute("SELECT min(first_id) FROM history_chunks").fetchone()
    (first_in_window,) = conn.execute(
        "SELECT min(id) FROM purchases WHERE ts_ms >= ? AND household IS NOT NULL", (320 * DAY_MS,)
    ).fetchone()
    assert oldest >= first_in_window  # merged chunks no longer hold the days before the window


def test_erasure_deletes_the_households_chunks_and_wins_over_a_step_packed_before_it(
    db: tuple[Path, sqlite3.Connection],
) -> None:
    _, conn = db
    shop = Shop(conn, seed=4)
    households = ["alice", "bob", "carol"]
    shop.shop_days(households, first_day=400, days=10)
    refresh(conn, 0)
    shop.shop_days(households, first_day=410, days=3)
    upto, top = history_cache.watermark(conn), history_cache.newest_purchase(conn)
    rows, merge = history_cache.read_step(conn, households, upto, top)
    packed = history_cache.pack_step(rows, merge, 0)  # packed while "bob" asks to be forgotten
    with conn:
        conn.execute("BEGIN")
        touched = erase_household(conn, "bob", 411 * DAY_MS, store_household_hooks())
    assert touched["history_chunks"] >= 1
    assert touched["history_categories"] >= 1
    same_store_counts(conn, 0)  # at once, not only after the next refresh
    with conn:
        conn.execute("BEGIN")
        history_cache.write_step(conn, packed)
        history_cache.set_watermark(conn, top)
    assert conn.execute("SELECT count(*) FROM history_chunks WHERE household = 'bob'").fetchone() == (0,)
    same(conn, ["alice", "carol"], 0)
    assert cached(conn, ["bob"], 0) == ([], [])


def test_the_full_rescore_reads_the_same_lines_through_the_cache(db: tuple[Path, sqlite3.Connection]) -> None:
    path, conn = db
    shop = Shop(conn, seed=5)
    households = [f"h{n:02d}" for n in range(12)]
    shop.shop_days(households, first_day=500, days=25)
    conn.execute("INSERT INTO rescore_queue (household, queued_ms) VALUES ('h03', 7)")

    async def run() -> None:
        applier = BatchApplier(load_planogram(DEMO_PLANOGRAM), Pseudonymiser(b"test-key-0123456789abcdef"))
        writer = StoreWriter(path, applier, IngestMetrics())
        await writer.open()
        task = asyncio.create_task(writer.run())
        cache = HistoryCache(path, writer, step_households=4)
        first = await cache.refresh(0)
        assert first.households == len(households)
        shop.shop_days(households, first_day=525, days=2)  # after the refresh: read from the tables
        await cache.close()
        await writer.stop()
        await task
        await writer.close()

    asyncio.run(run())
    categories = ("bread", "coffee", "eggs", "milk", "soup")  # pet-food unknown to the rescore: left out
    for since in (0, 510 * DAY_MS):
        want = load_lines(conn, households, categories, since)
        got = load_lines_cached(conn, households, categories, since)
        assert got.households == want.households
        assert got.queued == want.queued == {"h03": 7}
        order_w = np.lexsort((want.category, want.basket))
        order_g = np.lexsort((got.category, got.basket))
        for field in ("household", "category", "ts_ms", "basket", "qty", "price"):
            np.testing.assert_array_equal(getattr(got, field)[order_g], getattr(want, field)[order_w])


def test_a_store_upgraded_to_the_category_table_counts_from_the_cache_it_already_had(
    db: tuple[Path, sqlite3.Connection],
) -> None:
    path, conn = db
    shop = Shop(conn, seed=6)
    households = [f"h{n:02d}" for n in range(8)]
    shop.shop_days(households, first_day=600, days=15)
    refresh(conn, 0, finish=True)
    shop.shop_days(households, first_day=615, days=2)  # above the watermark at the upgrade
    # The database as schema 16 left it: a cache, no category table.
    conn.execute("DROP TABLE history_categories")
    conn.execute("DELETE FROM schema_migrations WHERE version = 17")
    conn.close()
    upgraded = open_store(path)
    try:
        (rows,) = upgraded.execute("SELECT count(*) FROM history_categories").fetchone()
        assert rows > 0
        for since in (0, 610 * DAY_MS):
            same_store_counts(upgraded, since)
        refresh(upgraded, 0)
        same_store_counts(upgraded, 0)
    finally:
        upgraded.close()
