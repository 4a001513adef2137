"""The predictions' tables (schema v7, v12): reading purchase history for scoring, writing cached scores
(tagged with the experiment and arm that made them) and what scoring cost per arm, the rescore queue,
shelf pick windows and forecasts. Outcomes are `edge.predictions.outcomes`.

Every function takes a connection: readers run on a read-only connection off the event loop, writers
inside the single writer's transaction (a `StoreWriter.run_job`, or the household events of
`edge.store.hooks`: `edge.predictions.outcomes.register_hooks` says what predictions do when a purchase,
a consent or an erasure is applied). The consent gate is enforced where rows are written: only households with
``consents.granted = 1`` for ``purpose = 'personalisation'`` ever get a row in ``predictions`` or
``rescore_queue``, checked in the same transaction as the write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge.customers.tables import has_consent
from edge.store.history_read import read_history

MS_PER_DAY = 86_400_000
FETCH_ROWS = 50_000
PERSONALISATION = "personalisation"
_CONSENTED = "SELECT 1 FROM consents WHERE household = ? AND purpose = 'personalisation' AND granted = 1"

PREDICTION_COLUMNS = (
    "household", "category", "purchases", "p1", "p2", "p7", "p14", "p_horizon", "expected_days",
    "days_p10", "days_p50", "days_p90", "confidence", "basket_probability", "urgency", "reason",
    "list_rank", "model_version", "basket_model_version", "scored_ms", "origin_day", "utc_offset_min",
    "experiment", "arm", "past_gap",
)  # fmt: skip
PredictionRow = tuple[object, ...]  # PREDICTION_COLUMNS, in order


class ArmCostRow(Protocol):
    """`edge.predictions.arms.ArmCost`, as this module reads it."""

    @property
    def experiment(self) -> str: ...
    @property
    def arm(self) -> str: ...
    @property
    def households(self) -> int: ...
    @property
    def wall_ms(self) -> float: ...
    @property
    def cpu_ms(self) -> float: ...
    @property
    def errors(self) -> int: ...


# -- consent --------------------------------------------------------------------------------------------


def consented_households(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT household FROM consents WHERE purpose = 'personalisation' AND granted = 1 ORDER BY household"
    ).fetchall()
    return [str(h) for (h,) in rows]


# -- purchase history -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class HouseholdLines:
    """Basket lines of some households, in columns (ts in UTC epoch ms), plus the rescore-queue entries
    of those households seen in the same snapshot."""

    households: tuple[str, ...]  # sorted; codes index into it
    household: npt.NDArray[np.int32]
    category: npt.NDArray[np.int32]  # index into the categories passed to `load_lines`
    ts_ms: npt.NDArray[np.int64]
    basket: npt.NDArray[np.int64]  # the purchase id
    qty: npt.NDArray[np.float32]
    price: npt.NDArray[np.float32]
    queued: dict[str, int]  # household -> queued_ms


def load_lines(
    conn: sqlite3.Connection, households: Sequence[str], categories: Sequence[str], since_ms: int
) -> HouseholdLines:
    """The households' basket lines since ``since_ms`` and their queue entries, in one read snapshot.

    Two narrow queries per step of households (their purchases, then those purchases' lines) rather than
    one join: every Python object made per line costs, and the household and time are per purchase."""
    names = tuple(sorted(set(households)))
    code = {h: i for i, h in enumerate(names)}
    cat_code = {c: i for i, c in enumerate(categories)}
    purchase_parts: list[npt.NDArray[np.int64]] = []
    line_parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float64]]] = []
    queued: dict[str, int] = {}
    conn.execute("BEGIN")
    try:
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            marks = ",".join("?" * len(chunk))
            queued.update(_queued(conn, chunk))
            purchases = conn.execute(
                f"SELECT id, household, ts_ms FROM purchases WHERE household IN ({marks}) AND ts_ms >= ?",  # noqa: S608
                (*chunk, since_ms),
            ).fetchall()
            if not purchases:
                continue
            ids, owners, times = zip(*purchases, strict=True)
            purchase_parts.append(
                np.stack(
                    (
                        np.asarray(ids, dtype=np.int64),
                        np.fromiter((code[h] for h in owners), np.int64, len(owners)),
                        np.asarray(times, dtype=np.int64),
                    )
                )
            )
            sql = (
                "SELECT purchase_id, category, qty, unit_price FROM purchase_items WHERE purchase_id IN"  # noqa: S608 - placeholders only
                f" (SELECT id FROM purchases WHERE household IN ({marks}) AND ts_ms >= ?)"
                " AND category IS NOT NULL AND qty > 0 AND unit_price >= 0"
            )
            cursor = conn.execute(sql, (*chunk, since_ms))
            while rows := cursor.fetchmany(FETCH_ROWS):
                line_ids, cats, qty, price = zip(*rows, strict=True)
                line_parts.append(
                    (
                        np.asarray(line_ids, dtype=np.int64),
                        np.fromiter((cat_code.get(c, -1) for c in cats), np.int32, len(cats)),
                        np.asarray((qty, price), dtype=np.float64),
                    )
                )
    finally:
        conn.execute("COMMIT")
    if not line_parts:
        empty_i = np.zeros(0, np.int32)
        empty_l = np.zeros(0, np.int64)
        empty_f = np.zeros(0, np.float32)
        return HouseholdLines(names, empty_i, empty_i, empty_l, empty_l, empty_f, empty_f, queued)
    bought = np.concatenate(purchase_parts, axis=1)
    order = np.argsort(bought[0], kind="stable")
    bought = bought[:, order]
    pid = np.concatenate([p[0] for p in line_parts])
    cat = np.concatenate([p[1] for p in line_parts])
    values = np.concatenate([p[2] for p in line_parts], axis=1)
    known = cat >= 0  # a category that appeared after the category table was read waits for the next run
    at = np.searchsorted(bought[0], pid[known])
    return HouseholdLines(
        names,
        bought[1, at].astype(np.int32),
        cat[known],
        bought[2, at],
        pid[known],
        values[0, known].astype(np.float32),
        values[1, known].astype(np.float32),
        queued,
    )


def _queued(conn: sqlite3.Connection, households: Sequence[str]) -> dict[str, int]:
    """The households' rescore-queue entries (household -> queued_ms)."""
    queued: dict[str, int] = {}
    for start in range(0, len(households), 500):
        chunk = tuple(households[start : start + 500])
        marks = ",".join("?" * len(chunk))
        queued.update(
            (str(h), int(ms))
            for h, ms in conn.execute(
                f"SELECT household, queued_ms FROM rescore_queue WHERE household IN ({marks})",  # noqa: S608 - placeholders only
                chunk,
            )
        )
    return queued


def load_lines_cached(
    conn: sqlite3.Connection, households: Sequence[str], categories: Sequence[str], since_ms: int
) -> HouseholdLines:
    """`load_lines` through the packed history (`edge.store.history_cache`; the nightly full rescore,
    after refreshing it): the same lines, a few rows per household instead of one per line."""
    cat_code = {c: i for i, c in enumerate(categories)}
    conn.execute("BEGIN")
    try:
        history = read_history(conn, households, since_ms)
        names = history.households
        queued = _queued(conn, names)
    finally:
        conn.execute("COMMIT")
    lut = np.array([cat_code.get(c, -1) for c in history.categories] or [-1], dtype=np.int32)
    category = lut[history.line_category] if history.line_category.size else history.line_category
    # as `load_lines`: a category the table does not know yet waits for the next run; no returns
    keep = (category >= 0) & (history.line_qty > 0) & (history.line_price >= 0)
    return HouseholdLines(
        names,
        history.line_owner[keep].astype(np.int32),
        category[keep],
        history.line_ts[keep],
        history.line_purchase[keep],
        history.line_qty[keep].astype(np.float32),
        history.line_price[keep].astype(np.float32),
        queued,
    )


@dataclass(frozen=True, slots=True)
class CategoryAggregates:
    """Store-wide, over all loyalty purchases in the window (anonymous sales statistics, like the
    generic list): households that bought each category, and households with any trip."""

    households_by_category: dict[str, int]
    active_households: int


def popular_categories(conn: sqlite3.Connection, since_ms: int, limit: int) -> list[tuple[str, float]]:
    """The store's most bought categories since ``since_ms``: (category, share of baskets with it)."""
    (baskets,) = conn.execute("SELECT count(*) FROM purchases WHERE ts_ms >= ?", (since_ms,)).fetchone()
    if not baskets:
        return []
    rows = conn.execute(
        "SELECT i.category, count(DISTINCT p.id) AS n FROM purchases p"
        " JOIN purchase_items i ON i.purchase_id = p.id WHERE p.ts_ms >= ? AND i.category IS NOT NULL"
        " GROUP BY i.category ORDER BY n DESC, i.category LIMIT ?",
        (since_ms, limit),
    ).fetchall()
    return [(str(c), round(int(n) / int(baskets), 4)) for c, n in rows]


# -- cached predictions ---------------------------------------------------------------------------------


def write_predictions(
    conn: sqlite3.Connection,
    households: Iterable[str],
    rows: Sequence[PredictionRow],
    queued: dict[str, int],
) -> tuple[int, int]:
    """Replace the cached rows of ``households`` with ``rows``, for those that still have consent (in this
    transaction); drop their queue entries up to what the scoring saw. Returns (households, rows) written."""
    scored = list(dict.fromkeys(households))
    allowed = {h for h in scored if has_consent(conn, h)}
    conn.executemany("DELETE FROM predictions WHERE household = ?", [(h,) for h in scored])
    keep = [r for r in rows if r[0] in allowed]
    marks = ", ".join("?" * len(PREDICTION_COLUMNS))
    conn.executemany(
        f"INSERT INTO predictions ({', '.join(PREDICTION_COLUMNS)}) VALUES ({marks})",  # noqa: S608 - fixed columns
        keep,
    )
    conn.executemany(
        "DELETE FROM rescore_queue WHERE household = ? AND queued_ms <= ?",
        [(h, ms) for h, ms in queued.items() if h in set(scored)],
    )
    # A queue entry of a household that lost consent is of no use.
    conn.executemany(
        "DELETE FROM rescore_queue WHERE household = ?", [(h,) for h in scored if h not in allowed]
    )
    return len(allowed), len(keep)


def record_arm_costs(conn: sqlite3.Connection, costs: Sequence[ArmCostRow], now_ms: int) -> None:
    """What scoring cost per experiment arm (`edge.predictions.arms.ArmCost`), for its guardrails."""
    conn.executemany(
        "INSERT INTO experiment_scoring (experiment, arm, ts_ms, households, wall_ms, cpu_ms, errors)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(c.experiment, c.arm, now_ms, c.households, c.wall_ms, c.cpu_ms, c.errors) for c in costs],
    )


def delete_household_predictions(conn: sqlite3.Connection, household: str, *, outcomes: bool = False) -> int:
    """Forget a household's cached predictions and queue entry (consent withdrawn); with ``outcomes``
    also its recorded outcomes (erasure). Run it inside the writer's transaction. Returns rows deleted."""
    deleted = conn.execute("DELETE FROM predictions WHERE household = ?", (household,)).rowcount
    deleted += conn.execute("DELETE FROM rescore_queue WHERE household = ?", (household,)).rowcount
    if outcomes:
        deleted += conn.execute("DELETE FROM prediction_outcomes WHERE household = ?", (household,)).rowcount
        deleted += conn.execute("DELETE FROM list_outcomes WHERE household = ?", (household,)).rowcount
    return deleted


def drop_unconsented(conn: sqlite3.Connection) -> int:
    """Delete cached rows of households without personalisation consent (a safety net for the nightly run)."""
    return conn.execute(
        "DELETE FROM predictions WHERE household NOT IN"
        " (SELECT household FROM consents WHERE purpose = 'personalisation' AND granted = 1)"
    ).rowcount


def queue_rescore(conn: sqlite3.Connection, household: str, now_ms: int) -> bool:
    """Mark a household for rescoring if it has personalisation consent; True if it was marked."""
    return (
        conn.execute(
            "INSERT INTO rescore_queue (household, queued_ms) SELECT ?, ? WHERE EXISTS (" + _CONSENTED + ")"
            " ON CONFLICT (household) DO UPDATE SET queued_ms = max(queued_ms, excluded.queued_ms)",
            (household, now_ms, household),
        ).rowcount
        > 0
    )


# -- shelves --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShelfPicks:
    shelves: tuple[str, ...]  # every shelf with a settled count, sorted
    items: tuple[int, ...]  # its items now
    pick_shelf: npt.NDArray[np.int64]  # code into shelves
    pick_minute: npt.NDArray[np.int64]  # UTC epoch minute
    pick_items: npt.NDArray[np.float64]


def shelf_picks(conn: sqlite3.Connection, now_ms: int) -> ShelfPicks:
    """Each shelf's settled count and its picks per minute in the two windows the shelf model looks at:
    the last 24 hours (and a minute) and the 24 hours a week ago."""
    state = conn.execute(
        "SELECT shelf, items FROM shelf_state WHERE items IS NOT NULL ORDER BY shelf"
    ).fetchall()
    shelves = tuple(str(s) for s, _ in state)
    code = {s: i for i, s in enumerate(shelves)}
    windows = ((now_ms - 86_460_000, now_ms + 1), (now_ms - 7 * MS_PER_DAY, now_ms - 6 * MS_PER_DAY + 60_000))
    rows: list[tuple[str, int, float]] = []
    for lo, hi in windows:
        rows += conn.execute(
            "SELECT shelf, ts_ms / 60000, sum(items) FROM shelf_changes"
            " WHERE kind = 'pick' AND ts_ms >= ? AND ts_ms < ? GROUP BY shelf, ts_ms / 60000",
            (lo, hi),
        ).fetchall()
    rows = [r for r in rows if r[0] in code]
    return ShelfPicks(
        shelves,
        tuple(int(n) for _, n in state),
        np.asarray([code[r[0]] for r in rows], dtype=np.int64),
        np.asarray([int(r[1]) for r in rows], dtype=np.int64),
        np.asarray([float(r[2]) for r in rows], dtype=np.float64),
    )


SHELF_FORECAST_COLUMNS = (
    "shelf", "items", "minutes_to_empty", "empty_at_ms", "baseline_minutes", "model_version", "scored_ms",
)  # fmt: skip


def write_shelf_forecasts(conn: sqlite3.Connection, rows: Sequence[tuple[object, ...]]) -> None:
    conn.executemany(
        f"INSERT OR REPLACE INTO shelf_forecasts ({', '.join(SHELF_FORECAST_COLUMNS)})"  # noqa: S608
        f" VALUES ({', '.join('?' * len(SHELF_FORECAST_COLUMNS))})",
        rows,
    )


def record_run(
    conn: sqlite3.Connection,
    kind: str,
    started_ms: int,
    finished_ms: int,
    households: int,
    rows: int,
    model: str,
) -> None:
    conn.execute(
        "INSERT INTO prediction_runs (kind, started_ms, finished_ms, households, rows, model_version)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (kind, started_ms, finished_ms, households, rows, model),
    )
    # Bounded: the last 1000 runs are plenty for "when did the nightly run last finish".
    conn.execute("DELETE FROM prediction_runs WHERE id <= (SELECT max(id) FROM prediction_runs) - 1000")


def last_full_run_ms(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT max(finished_ms) FROM prediction_runs WHERE kind = 'full'").fetchone()
    return None if row is None or row[0] is None else int(row[0])
