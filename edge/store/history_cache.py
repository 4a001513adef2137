"""The households' purchase history, packed per household for the nightly jobs (docs/models.md, "Serving
in the daemon").

The nightly full rescore and the customer scores read every consenting household's basket lines of
the last year: millions of rows, and through Python's sqlite3 every row costs a tuple and its objects
(about 3-4 us a line). Purchases never change once stored (a till's basket is applied once; erasure
only unlinks them), so the lines can be kept a second time, packed: ``history_chunks`` holds, per
household, numpy arrays of its lines and trips as BLOBs, one row per refresh that brought it new
purchases, merged into one when a household has `MAX_CHUNKS`. Reading 20,000 households is then
20,000-odd rows.

* `refresh_steps` / `write_step` (called by `HistoryCache.refresh`): purchases with an id above the
  cache's watermark (``history_cache_state``) are read on a read connection, packed in an executor and
  written through the store's one writer, a step of households at a time, the watermark last. A step
  that a crash interrupts is read again; a purchase that lands in two chunks is counted once on reading.
* `edge.store.history_read.read_history`: the cached chunks of some households plus their purchases
  above the watermark straight from the tables (the reading side, in its own module).
* Beside the chunks, `edge.store.history_categories` notes which categories each household bought
  (the store-wide counts the models need), in the same transaction.
* Erasure deletes the household's chunks in its own transaction (`register_hooks`); a step checks in
  its writing transaction that each purchase it packed is still linked to the household, so an erasure
  that commits while a step is being packed wins.

Only lines with a category are kept (the models and the segments need one). The cache holds nothing
the ``purchases`` and ``purchase_items`` tables do not already hold for a linked household.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.store.history_categories import forget_household, record_chunk
from edge.store.hooks import HouseholdErased, HouseholdHooks

MAX_CHUNKS = 8  # a household's chunks are merged into one when a refresh would make more
STEP_HOUSEHOLDS = 1000  # households packed and written per writer job
RANGE_SCAN_PURCHASES = 200_000  # up to this many new purchases are read in one scan by id

LINE = np.dtype([("purchase", "<i8"), ("ts", "<i8"), ("category", "<i4"), ("qty", "<f8"), ("price", "<f8")])
TRIP = np.dtype([("purchase", "<i8"), ("ts", "<i8"), ("total", "<f8")])


@dataclass(frozen=True, slots=True)
class Chunk:
    """A household's packed purchases with ids in [first_id, last_id]; categories by local code."""

    household: str
    first_id: int
    last_id: int
    categories: tuple[str, ...]
    lines: npt.NDArray[np.void]  # LINE records
    trips: npt.NDArray[np.void]  # TRIP records


@dataclass(frozen=True, slots=True)
class Step:
    """One writer job of a refresh: new chunks, and the older chunks they replace (merged in)."""

    chunks: list[Chunk]
    replaced: list[tuple[str, int]]  # (household, first_id) of chunks merged into the new ones


# -- hooks -----------------------------------------------------------------------------------
def register_hooks(hooks: HouseholdHooks) -> None:
    hooks.on_erasure(_household_erased)


def _household_erased(conn: sqlite3.Connection, event: HouseholdErased) -> dict[str, int]:
    deleted = conn.execute("DELETE FROM history_chunks WHERE household = ?", (event.household,)).rowcount
    return {"history_chunks": deleted, "history_categories": forget_household(conn, event.household)}


# -- refresh --------------------------------------------------------------------------------------------
def watermark(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT upto_id FROM history_cache_state WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def newest_purchase(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(id) FROM purchases").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def households_with_new(conn: sqlite3.Connection, upto: int, top: int) -> list[str]:
    """Linked households with a purchase in (upto, top], sorted."""
    rows = conn.execute(
        "SELECT DISTINCT household FROM purchases WHERE id > ? AND id <= ? AND household IS NOT NULL",
        (upto, top),
    )
    return sorted(str(h) for (h,) in rows)


Rows = tuple[list[tuple[int, str, int, float]], list[tuple[int, str, float, float]]]


def read_step(
    conn: sqlite3.Connection, households: Sequence[str], upto: int, top: int
) -> tuple[Rows, list[Chunk]]:
    """The households' purchases and lines in (upto, top], and their chunks to merge (those with
    `MAX_CHUNKS` - 1 or more), in one read snapshot."""
    names = tuple(households)
    marks = ",".join("?" * len(names))
    conn.execute("BEGIN")
    try:
        if top - upto <= RANGE_SCAN_PURCHASES:  # a night's purchases: one scan by id, then keep ours
            rows = _rows_by_id(conn, names, upto, top)
        else:  # the first build: each household's purchases through its index
            rows = _rows_by_household(conn, names, upto, top)
        crowded = [
            str(h)
            for (h,) in conn.execute(
                f"SELECT household FROM history_chunks WHERE household IN ({marks})"  # noqa: S608
                " GROUP BY household HAVING count(*) >= ?",
                (*names, MAX_CHUNKS - 1),
            )
        ]
        merge = list(_chunks(conn, crowded))
    finally:
        conn.execute("COMMIT")
    return rows, merge


def _rows_by_id(conn: sqlite3.Connection, names: Sequence[str], upto: int, top: int) -> Rows:
    wanted = set(names)
    purchases = [
        (int(i), str(h), int(t), float(v))
        for i, h, t, v in conn.execute(
            "SELECT id, household, ts_ms, total FROM purchases WHERE id > ? AND id <= ? AND household IS NOT NULL",
            (upto, top),
        )
        if h in wanted
    ]
    ids = {p[0] for p in purchases}
    lines = [
        (int(i), str(c), float(q), float(v))
        for i, c, q, v in conn.execute(
            "SELECT purchase_id, category, qty, unit_price FROM purchase_items"
            " WHERE purchase_id > ? AND purchase_id <= ? AND category IS NOT NULL",
            (upto, top),
        )
        if i in ids
    ]
    return purchases, lines


def _rows_by_household(conn: sqlite3.Connection, names: Sequence[str], upto: int, top: int) -> Rows:
    marks = ",".join("?" * len(names))
    purchases = conn.execute(
        f"SELECT id, household, ts_ms, total FROM purchases WHERE household IN ({marks})"  # noqa: S608 - placeholders only
        " AND id > ? AND id <= ?",
        (*names, upto, top),
    ).fetchall()
    lines = conn.execute(
        "SELECT purchase_id, category, qty, unit_price FROM purchase_items WHERE purchase_id IN"  # noqa: S608 - placeholders only
        f" (SELECT id FROM purchases WHERE household IN ({marks}) AND id > ? AND id <= ?)"
        " AND category IS NOT NULL",
        (*names, upto, top),
    ).fetchall()
    return purchases, lines


def pack_step(rows: Rows, merge: Sequence[Chunk], keep_since_ms: int) -> Step:
    """New chunks from the rows `read_step` read (CPU work: run it in an executor). A household with
    chunks to merge gets one chunk of all of them and its new purchases, without lines older than
    ``keep_since_ms`` (the history the nightly jobs read)."""
    purchases, lines = rows
    owner_of = {p[0]: p[1] for p in purchases}
    by_household: dict[
        str, tuple[list[tuple[int, int, float]], list[tuple[int, int, str, float, float]]]
    ] = {}
    ts_of = {p[0]: p[2] for p in purchases}
    for pid, household, ts, total in purchases:
        by_household.setdefault(household, ([], []))[0].append((pid, ts, total))
    for pid, category, qty, price in lines:
        owner = owner_of.get(pid)
        if owner is not None:
            by_household[owner][1].append((pid, ts_of[pid], str(category), float(qty), float(price)))
    merging: dict[str, list[Chunk]] = {}
    for chunk in merge:
        merging.setdefault(chunk.household, []).append(chunk)
    chunks: list[Chunk] = []
    replaced: list[tuple[str, int]] = []
    for household in sorted(by_household.keys() | merging.keys()):
        trips, own_lines = by_household.get(household, ([], []))
        categories = sorted({r[2] for r in own_lines})
        code = {c: i for i, c in enumerate(categories)}
        new_lines = np.array([(p, t, code[c], q, v) for p, t, c, q, v in own_lines], dtype=LINE)
        new_trips = np.array(trips, dtype=TRIP)
        old = merging.get(household, [])
        if old:
            new_lines, new_trips, categories = _merged(old, new_lines, new_trips, categories, keep_since_ms)
            replaced += [(household, c.first_id) for c in old]
        if new_trips.size == 0:
            continue
        chunks.append(
            Chunk(
                household,
                int(new_trips["purchase"].min()),
                int(new_trips["purchase"].max()),
                tuple(categories),
                new_lines,
                new_trips,
            )
        )
    return Step(chunks, replaced)


def _merged(
    old: Sequence[Chunk],
    lines: npt.NDArray[np.void],
    trips: npt.NDArray[np.void],
    categories: list[str],
    keep_since_ms: int,
) -> tuple[npt.NDArray[np.void], npt.NDArray[np.void], list[str]]:
    names = sorted({c for chunk in old for c in chunk.categories} | set(categories))
    code = {c: i for i, c in enumerate(names)}
    parts_l, parts_t = [], []
    for part_lines, part_trips, cats in [
        *((c.lines, c.trips, c.categories) for c in old),
        (lines, trips, categories),
    ]:
        recoded = part_lines.copy()
        if recoded.size:
            recoded["category"] = np.array([code[c] for c in cats], dtype=np.int32)[recoded["category"]]
        parts_l.append(recoded)
        parts_t.append(part_trips)
    trip_keep, line_keep = _once(parts_t, parts_l)
    all_trips = np.concatenate(parts_t)[trip_keep]
    all_lines = np.concatenate(parts_l)[line_keep]
    all_trips = all_trips[all_trips["ts"] >= keep_since_ms]
    all_lines = all_lines[all_lines["ts"] >= keep_since_ms]
    return all_lines, all_trips, names


def _once(
    parts_t: Sequence[npt.NDArray[np.void]], parts_l: Sequence[npt.NDArray[np.void]]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Which trips and lines of the concatenated parts to keep so that a purchase in two parts (a
    refresh step read again after a crash) counts once: the first part's copy."""
    purchase = np.concatenate([t["purchase"] for t in parts_t]) if parts_t else np.zeros(0, np.int64)
    _, first = np.unique(purchase, return_index=True)
    line_count = sum(p.size for p in parts_l)
    if first.size == purchase.size:
        return np.arange(purchase.size), np.ones(line_count, dtype=bool)
    part_of_trip = np.concatenate([np.full(t.size, k) for k, t in enumerate(parts_t)])
    kept_part = dict(zip(purchase[first].tolist(), part_of_trip[first].tolist(), strict=True))
    line_purchase = np.concatenate([p["purchase"] for p in parts_l]).tolist()
    part_of_line = np.concatenate([np.full(p.size, k) for k, p in enumerate(parts_l)]).tolist()
    keep = np.fromiter(
        (kept_part.get(p) == k for p, k in zip(line_purchase, part_of_line, strict=True)), bool, line_count
    )
    return np.sort(first), keep


def write_step(conn: sqlite3.Connection, step: Step) -> int:
    """Write a step's chunks (in the writer's transaction): only chunks whose purchases are all still
    linked to their household (an erasure committed meanwhile wins). Returns chunks written."""
    written = 0
    for chunk in step.chunks:
        ids = chunk.trips["purchase"].tolist()
        linked = 0
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            (n,) = conn.execute(
                f"SELECT count(*) FROM purchases WHERE id IN ({marks}) AND household = ?",  # noqa: S608
                (*part, chunk.household),
            ).fetchone()
            linked += int(n)
        if linked != len(ids):
            conn.execute("DELETE FROM history_chunks WHERE household = ?", (chunk.household,))
            forget_household(conn, chunk.household)
            continue
        conn.execute(
            "INSERT OR REPLACE INTO history_chunks (household, first_id, last_id, categories, lines, trips)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                chunk.household,
                chunk.first_id,
                chunk.last_id,
                json.dumps(chunk.categories),
                chunk.lines.tobytes(),
                chunk.trips.tobytes(),
            ),
        )
        record_chunk(conn, chunk.household, chunk.categories, chunk.lines["category"], chunk.lines["ts"])
        written += 1
    merged_into = {(c.household, c.first_id) for c in step.chunks}
    conn.executemany(
        "DELETE FROM history_chunks WHERE household = ? AND first_id = ?",
        [key for key in step.replaced if key not in merged_into],
    )
    return written


def set_watermark(conn: sqlite3.Connection, upto: int) -> None:
    conn.execute(
        "INSERT INTO history_cache_state (id, upto_id) VALUES (1, ?)"
        " ON CONFLICT (id) DO UPDATE SET upto_id = max(upto_id, excluded.upto_id)",
        (upto,),
    )


# -- reading --------------------------------------------------------------------------------------------
def _chunks(conn: sqlite3.Connection, households: Sequence[str]) -> Iterable[Chunk]:
    for start in range(0, len(households), 500):
        part = tuple(households[start : start + 500])
        marks = ",".join("?" * len(part))
        for household, first, last, categories, lines, trips in conn.execute(
            "SELECT household, first_id, last_id, categories, lines, trips FROM history_chunks"  # noqa: S608
            f" WHERE household IN ({marks})",
            part,
        ):
            yield Chunk(
                str(household),
                int(first),
                int(last),
                tuple(json.loads(categories)),
                np.frombuffer(lines, dtype=LINE),
                np.frombuffer(trips, dtype=TRIP),
            )
