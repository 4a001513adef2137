"""The ranker refresh's read of the whole store, handed on to the full rescore that follows it.

`edge.predictions.ranker` reads every consenting household's lines (and builds their `PurchaseHistory`)
right before the nightly full rescore, whose steps would read and build the same again, step by step.
`StoreRead` keeps that read until the full rescore takes it; `StoreRead.step` then serves a step from it
instead of `edge.predictions.tables.load_lines_cached` + `edge.predictions.scoring.lines_history`, but
only where the result is the same: nothing was purchased or erased since the read (`read_token`, checked
in the step's own snapshot, with its rescore-queue entries), the step's households are a run of the
read's, its category table is the read's, its window starts at or after the read's (a line that left
the window is dropped; then the history is built from the lines, as before) and its UTC offset is the
read's. Otherwise the step reads as before (None).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.predictions.aggregates import store_aggregates
from edge.predictions.tables import HouseholdLines, _queued, consented_households, load_lines_cached
from edge.store.history_cache import newest_purchase, watermark
from models.history import PurchaseHistory

I64 = npt.NDArray[np.int64]
ReadToken = tuple[int, int, int, int]


def read_token(conn: sqlite3.Connection) -> ReadToken:
    """What changes when a household's lines may: the packed history's watermark, the newest purchase,
    and the erasures (an erasure unlinks purchases without a new one)."""
    count, latest = conn.execute("SELECT count(*), coalesce(max(erased_ms), 0) FROM erasures").fetchone()
    return watermark(conn), newest_purchase(conn), int(count), int(latest)


def read_store(
    conn: sqlite3.Connection, since_ms: int
) -> tuple[tuple[str, ...], HouseholdLines, ReadToken | None]:
    """The store's categories and every consenting household's lines since ``since_ms`` (packed history),
    as the full rescore reads them, and the `read_token` they were read at (None: it changed meanwhile,
    the read is not handed on)."""
    before = read_token(conn)
    categories, _counts = store_aggregates(conn, since_ms)
    lines = load_lines_cached(conn, consented_households(conn), categories, since_ms)
    return categories, lines, before if read_token(conn) == before else None


@dataclass(frozen=True, slots=True, eq=False)
class StoreRead:
    """Every consenting household's lines (by household) and their history, read at ``token``."""

    token: ReadToken
    since_ms: int
    utc_offset_min: int
    categories: tuple[str, ...]
    lines: HouseholdLines  # lines of household i: [line_starts[i], line_starts[i + 1])
    line_starts: I64
    history: PurchaseHistory  # lines_history(lines, categories, utc_offset_min)
    history_starts: I64

    @classmethod
    def build(
        cls,
        token: ReadToken,
        since_ms: int,
        utc_offset_min: int,
        categories: tuple[str, ...],
        lines: HouseholdLines,
        history: PurchaseHistory,
    ) -> StoreRead:
        """Index ``lines`` and ``history`` by household (the lines stably sorted by household: the
        packed history's newest purchases come last)."""
        if lines.household.size and np.any(np.diff(lines.household) < 0):
            order = np.argsort(lines.household, kind="stable")
            lines = HouseholdLines(
                lines.households,
                lines.household[order],
                lines.category[order],
                lines.ts_ms[order],
                lines.basket[order],
                lines.qty[order],
                lines.price[order],
                lines.queued,
            )
        edges = np.arange(len(lines.households) + 1)
        return cls(
            token,
            since_ms,
            utc_offset_min,
            categories,
            lines,
            np.searchsorted(lines.household, edges).astype(np.int64),
            history,
            np.searchsorted(history.household, edges).astype(np.int64),
        )

    def step(
        self,
        conn: sqlite3.Connection,
        households: Sequence[str],
        categories: tuple[str, ...],
        since_ms: int,
        utc_offset_min: int,
    ) -> tuple[HouseholdLines, PurchaseHistory | None] | None:
        """A step's lines, as `load_lines_cached` would read them now, and their history when it is the
        read's (else None: build it from the lines); None: read the step (see the module docstring)."""
        names = tuple(sorted(set(households)))
        if not names or categories != self.categories or since_ms < self.since_ms:
            return None
        first = int(np.searchsorted(np.asarray(self.lines.households, dtype=object), names[0]))
        last = first + len(names)
        if self.lines.households[first:last] != names:
            return None
        conn.execute("BEGIN")
        try:
            token, queued = read_token(conn), _queued(conn, names)
        finally:
            conn.execute("COMMIT")
        if token != self.token:
            return None
        lo, hi = int(self.line_starts[first]), int(self.line_starts[last])
        src = self.lines
        ts = src.ts_ms[lo:hi]
        keep = ts >= since_ms
        whole = bool(keep.all())
        pick = slice(lo, hi) if whole else np.flatnonzero(keep) + lo
        lines = HouseholdLines(
            names,
            (src.household[pick] - first).astype(np.int32),
            src.category[pick],
            src.ts_ms[pick],
            src.basket[pick],
            src.qty[pick],
            src.price[pick],
            queued,
        )
        if not whole or utc_offset_min != self.utc_offset_min:
            return lines, None
        return lines, self._history(first, last, names)

    def _history(self, first: int, last: int, names: tuple[str, ...]) -> PurchaseHistory:
        """Households ``first`` .. ``last`` - 1 of the history (canonical: by household first), re-coded."""
        full = self.history
        lo, hi = int(self.history_starts[first]), int(self.history_starts[last])
        return PurchaseHistory(
            names,
            full.categories,
            full.household[lo:hi] - np.int32(first),
            full.category[lo:hi],
            full.day[lo:hi],
            full.minute[lo:hi],
            full.basket[lo:hi],
            full.qty[lo:hi],
            full.price[lo:hi],
            full.promo[lo:hi],
        )
