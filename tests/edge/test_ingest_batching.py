"""The batch applier's batching changes nothing: any split of the same items into batches leaves the same
rows in every table, the same fates and the same job results as applying them one at a time.

What is batched (edge/store/ledger.py, edge/store/apply.py): the ledger rows of a run of readings go in
with one ``executemany`` (row by row when it reports copies), and each shelf's weight state is written
once per batch. Copies (a broker's redelivery, or two copies in one batch), late readings, settles and
picks, purchases, and maintenance jobs between readings are all in the generated sequences.
"""

from __future__ import annotations

import itertools
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.customers.privacy import Pseudonymiser
from edge.store.apply import BatchApplier, Fate, Received, load_planogram_job
from edge.store.db import open_store
from sensors.planogram import load_planogram
from sensors.schemas import (
    FootfallCount,
    FridgeTemperature,
    PosItem,
    PosTransaction,
    Reading,
    ShelfEvent,
    ShelfWeight,
)

PLANOGRAM = load_planogram(
    Path(__file__).resolve().parents[2] / "simulators" / "demo_store" / "planogram.toml"
)
T0 = 1_795_514_400_000
SHELVES = ("A1-1", "A1-2")
SKUS = sorted({s.sku for s in PLANOGRAM.shelves.values()})[:4]


def _job(conn: sqlite3.Connection) -> object:
    """A maintenance job that reports what it sees: it must see everything queued before it."""
    return (
        conn.execute("SELECT count(*), coalesce(sum(seq), 0) FROM readings").fetchone(),
        conn.execute("SELECT shelf, grams, items, ts_ms, settled FROM shelf_state ORDER BY shelf").fetchall(),
        conn.execute("SELECT id, messages, last_ts_ms FROM devices ORDER BY id").fetchall(),
    )


Item = Reading | type[_job]

seqs = st.integers(1, 6)
offsets = st.integers(0, 12).map(lambda k: T0 + k * 400)  # few values: copies and late readings happen
weights = st.builds(
    lambda shelf, seq, ts, items, noise: ShelfWeight(
        f"shelf-{shelf}", shelf, seq, ts, items * PLANOGRAM.shelves[shelf].unit_grams + noise
    ),
    st.sampled_from(SHELVES),
    seqs,
    offsets,
    st.integers(0, 4),
    st.sampled_from((0.0, 1.5, -2.0)),
)
events = st.builds(
    lambda shelf, seq, ts, action: ShelfEvent(f"shelf-{shelf}", shelf, seq, ts, action, 1),
    st.sampled_from(SHELVES),
    seqs,
    offsets,
    st.sampled_from(("pick", "put")),
)
fridge = st.builds(
    lambda seq, ts, c: FridgeTemperature("fridge-F1", "F1", seq, ts, c),
    seqs,
    offsets,
    st.sampled_from((2.0, 9.5)),
)
footfall = st.builds(
    lambda seq, ts, i, o: FootfallCount("footfall-checkout", "checkout", seq, ts, i, o, 10.0),
    seqs,
    offsets,
    st.integers(0, 40),
    st.integers(0, 5),
)
baskets = st.builds(
    lambda seq, ts, sku, card: PosTransaction(
        "pos-1", "1", seq, ts, f"b{seq}-{ts}", (PosItem(sku, 2.0, 1.5),), 3.0, card
    ),
    seqs,
    offsets,
    st.sampled_from(SKUS),
    st.sampled_from((None, "4000123412341234")),
)
items = st.lists(
    st.one_of(weights, weights, weights, events, fridge, footfall, baskets, st.just(_job)),
    min_size=1,
    max_size=40,
)


def _run(
    items: list[Item], cuts: list[int]
) -> tuple[dict[str, list[tuple[object, ...]]], list[Fate], list[object]]:
    """Apply ``items`` in batches split at ``cuts`` on a fresh store; every table, the fates, job results."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = open_store(Path(tmp) / "store.db")
        conn.execute("PRAGMA synchronous = OFF")  # what is compared is the rows, not their durability
        applier = BatchApplier(PLANOGRAM, Pseudonymiser(b"k" * 32))
        applier.apply(conn, [Received(load_planogram_job(PLANOGRAM), T0)], T0)
        fates: list[Fate] = []
        results: list[object] = []
        bounds = [0, *sorted(set(cuts)), len(items)]
        for start, end in itertools.pairwise(bounds):
            if start < end:
                outcome = applier.apply(conn, [Received(i, T0 + 5) for i in items[start:end]], T0 + 9)  # type: ignore[misc]
                fates += outcome.fates
                results += outcome.job_results
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            # sync_state holds a random feed id (its totals are compared below); migrations, dates
            if name not in ("sync_state", "schema_migrations")
        ]
        rows = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
        # A batch's alert rows follow its readings in the outbox (as always): compare without seqs.
        rows["outbox"] = sorted((r[1:] for r in rows["outbox"]), key=repr)
        rows["sync_state"] = conn.execute("SELECT pending_rows, pending_bytes FROM sync_state").fetchall()
        conn.close()
        return rows, fates, results


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=items, data=st.data())
def test_any_split_into_batches_leaves_the_same_rows_as_one_at_a_time(
    items: list[Item], data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(items)), max_size=4))
    one_by_one = _run(items, list(range(len(items))))
    batched = _run(items, cuts)
    assert batched[0] == one_by_one[0]
    assert batched[1] == one_by_one[1]
    assert batched[2] == one_by_one[2]


def test_copies_in_one_batch_and_of_stored_rows_are_duplicates_with_no_effect() -> None:
    weight = ShelfWeight("shelf-A1-1", "A1-1", 1, T0, 2000.0)
    other = ShelfWeight("shelf-A1-1", "A1-1", 2, T0 + 400, 2001.0)
    rows, fates, _ = _run([weight, weight, other, weight, other], [3])
    assert fates == [Fate.STORED, Fate.DUPLICATE, Fate.STORED, Fate.DUPLICATE, Fate.DUPLICATE]
    assert len(rows["readings"]) == 2
    assert [(r[1], r[2]) for r in rows["outbox"]] == [("reading", "shelf-A1-1")] * 2
