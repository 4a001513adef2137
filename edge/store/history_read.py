"""Reading the households' packed purchase history (`edge.store.history_cache`, which keeps it up to
date): `read_history` returns the cached chunks of some households plus, in the same read snapshot, their
purchases above the cache's watermark straight from the tables: exact whenever it runs, fast once
refreshed. A purchase that lands in two chunks (a refresh step read again after a crash) is counted once.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.store.history_cache import (
    LINE,
    TRIP,
    Chunk,
    Rows,
    _chunks,
    _once,
    _rows_by_id,
    newest_purchase,
    pack_step,
    watermark,
)

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class History:
    """Basket lines and trips of some households (``households`` sorted; owners index into it)."""

    households: tuple[str, ...]
    categories: tuple[str, ...]  # category code -> name
    line_owner: I64
    line_purchase: I64
    line_ts: I64
    line_category: npt.NDArray[np.int32]
    line_qty: npt.NDArray[np.float64]
    line_price: npt.NDArray[np.float64]
    trip_owner: I64
    trip_purchase: I64
    trip_ts: I64
    trip_total: npt.NDArray[np.float64]


def read_history(conn: sqlite3.Connection, households: Sequence[str], since_ms: int) -> History:
    """The households' lines and trips since ``since_ms``: the cache up to its watermark and the
    tables above it (exact at any time; fast when the cache is fresh). Call it inside a read
    transaction (``BEGIN`` ... ``COMMIT``) so that both come from one snapshot."""
    names = tuple(sorted(set(households)))
    upto = watermark(conn)
    chunks = list(_chunks(conn, names))
    top = newest_purchase(conn)
    rows: Rows = _rows_by_id(conn, names, upto, top) if top > upto else ([], [])
    tail = pack_step(rows, [], since_ms)
    return _assemble(names, [*chunks, *tail.chunks], since_ms)


def _assemble(names: tuple[str, ...], chunks: Sequence[Chunk], since_ms: int) -> History:
    index = {h: i for i, h in enumerate(names)}
    categories: dict[str, int] = {}
    mine = [(code, chunk) for chunk in chunks if (code := index.get(chunk.household)) is not None]
    if not mine:
        e_i, e_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return History(names, (), e_i, e_i, e_i, np.zeros(0, np.int32), e_f, e_f, e_i, e_i, e_i, e_f)
    # Whole columns at once, not an array operation per chunk (20,000 households: 1.8-2.0 s -> 1.2 s).
    parts_l = [chunk.lines for _, chunk in mine]
    parts_t = [chunk.trips for _, chunk in mine]
    owner = np.fromiter((o for o, _ in mine), np.int64, len(mine))
    line_sizes = np.fromiter((p.size for p in parts_l), np.int64, len(mine))
    trip_sizes = np.fromiter((p.size for p in parts_t), np.int64, len(mine))
    # Per chunk, its category codes in this read's table (first seen, first coded), end to end.
    luts = [[categories.setdefault(c, len(categories)) for c in chunk.categories] for _, chunk in mine]
    lut_sizes = np.fromiter((len(lut) for lut in luts), np.int64, len(mine))
    lut = np.fromiter(itertools.chain.from_iterable(luts), np.int32, int(lut_sizes.sum()))
    lut_start = np.cumsum(lut_sizes) - lut_sizes
    lines = _concatenate(parts_l, LINE)
    trips = _concatenate(parts_t, TRIP)
    line_owner = np.repeat(owner, line_sizes)
    trip_owner = np.repeat(owner, trip_sizes)
    line_code = (
        lut[np.repeat(lut_start, line_sizes) + lines["category"]] if lines.size else np.zeros(0, np.int32)
    )
    trip_keep, line_keep = _once(parts_t, parts_l)
    trips, trip_owner = trips[trip_keep], trip_owner[trip_keep]
    lines, line_owner, line_code = lines[line_keep], line_owner[line_keep], line_code[line_keep]
    # Rows come by household, then purchase; the consumers sort canonically (`models.history`).
    recent_t = trips["ts"] >= since_ms
    recent_l = lines["ts"] >= since_ms
    if not recent_l.all():
        lines, line_owner, line_code = lines[recent_l], line_owner[recent_l], line_code[recent_l]
    if not recent_t.all():
        trips, trip_owner = trips[recent_t], trip_owner[recent_t]
    return History(
        names,
        tuple(categories),
        line_owner,
        lines["purchase"].astype(np.int64),
        lines["ts"].astype(np.int64),
        line_code.astype(np.int32),
        lines["qty"].astype(np.float64),
        lines["price"].astype(np.float64),
        trip_owner,
        trips["purchase"].astype(np.int64),
        trips["ts"].astype(np.int64),
        trips["total"].astype(np.float64),
    )


def _concatenate(parts: Sequence[npt.NDArray[np.void]], dtype: np.dtype[np.void]) -> npt.NDArray[np.void]:
    """``parts`` (records of ``dtype``) end to end: their bytes joined (`np.concatenate` promotes the
    fields of every part, 20 us each)."""
    return np.frombuffer(b"".join(np.ascontiguousarray(p, dtype=dtype).tobytes() for p in parts), dtype=dtype)
