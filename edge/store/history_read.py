"""Reading the households' packed purchase history (`edge.store.history_cache`, which keeps it up to
date): `read_history` returns the cached chunks of some households plus, in the same read snapshot, their
purchases above the cache's watermark straight from the tables: exact whenever it runs, fast once
refreshed. A purchase that lands in two chunks (a refresh step read again after a crash) is counted once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.store.history_cache import (
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
    parts_l: list[npt.NDArray[np.void]] = []
    parts_t: list[npt.NDArray[np.void]] = []
    owners_l: list[I64] = []
    owners_t: list[I64] = []
    codes: list[npt.NDArray[np.int32]] = []
    for chunk in chunks:
        owner = index.get(chunk.household)
        if owner is None:
            continue
        lut = np.array([categories.setdefault(c, len(categories)) for c in chunk.categories] or [0], np.int32)
        parts_l.append(chunk.lines)
        parts_t.append(chunk.trips)
        owners_l.append(np.full(chunk.lines.size, owner, dtype=np.int64))
        owners_t.append(np.full(chunk.trips.size, owner, dtype=np.int64))
        codes.append(lut[chunk.lines["category"]] if chunk.lines.size else np.zeros(0, np.int32))
    if not parts_t:
        e_i, e_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return History(names, (), e_i, e_i, e_i, np.zeros(0, np.int32), e_f, e_f, e_i, e_i, e_i, e_f)
    trips = np.concatenate(parts_t)
    trip_owner = np.concatenate(owners_t)
    lines = np.concatenate(parts_l)
    line_owner = np.concatenate(owners_l)
    line_code = np.concatenate(codes)
    trip_keep, line_keep = _once(parts_t, parts_l)
    trips, trip_owner = trips[trip_keep], trip_owner[trip_keep]
    lines, line_owner, line_code = lines[line_keep], line_owner[line_keep], line_code[line_keep]
    # Rows come by household, then purchase; the consumers sort canonically (`models.history`).
    recent_t = trips["ts"] >= since_ms
    recent_l = lines["ts"] >= since_ms
    lines, line_owner, line_code = lines[recent_l], line_owner[recent_l], line_code[recent_l]
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
