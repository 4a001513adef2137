"""The customer scores' tables (schema v15): ``customer_scores`` (CLV, churn and segment per household)
and ``customer_insights`` (a household's cached insights document), with the ``analytics`` consent only.

Readers run on a read-only connection off the event loop; writers inside the single writer's
transaction. The consent gate is enforced where rows are written (checked in the same transaction), and
the household hooks (`register_hooks`) delete both tables' rows when analytics consent is withdrawn or
the household is erased, and drop a cached document when the household buys something.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from edge.store.hooks import ConsentRecorded, HouseholdErased, HouseholdHooks, PurchaseApplied
from sync.outbox import OutboxEntry

ANALYTICS = "analytics"
_ANALYTICS_GRANTED = "SELECT household FROM consents WHERE purpose = 'analytics' AND granted = 1"
SCORE_COLUMNS = (
    "household", "expected_trips_90d", "expected_spend_90d", "p_alive", "p_churn", "churn_band",
    "churn_reason", "clv", "clv_horizon_days", "segment", "model_version", "segments_version", "scored_ms",
)  # fmt: skip
_INSERT_SCORE = "INSERT OR REPLACE INTO customer_scores ({}) VALUES ({})".format(  # noqa: S608 - fixed names
    ",".join(SCORE_COLUMNS), ",".join("?" * len(SCORE_COLUMNS))
)
_DROP_UNCONSENTED = tuple(
    f"DELETE FROM {table} WHERE household NOT IN ({_ANALYTICS_GRANTED})"  # noqa: S608 - fixed names
    for table in ("customer_scores", "customer_insights")
)


class CustomerScore(msgspec.Struct, frozen=True, kw_only=True):
    """One household's row of ``customer_scores`` (`SCORE_COLUMNS`)."""

    household: str
    expected_trips_90d: float
    expected_spend_90d: float
    p_alive: float
    p_churn: float  # P(no trip in the churn window, 56 days)
    churn_band: str
    churn_reason: str
    clv: float
    clv_horizon_days: int
    segment: str | None
    model_version: str
    segments_version: str | None
    scored_ms: int

    def row(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in SCORE_COLUMNS)


def has_analytics(conn: sqlite3.Connection, household: str) -> bool:
    row = conn.execute(
        "SELECT granted FROM consents WHERE household = ? AND purpose = 'analytics'", (household,)
    ).fetchone()
    return bool(row and row[0])


def analytics_households(conn: sqlite3.Connection) -> list[str]:
    return [str(h) for (h,) in conn.execute(f"{_ANALYTICS_GRANTED} ORDER BY household")]


def trips_since(
    conn: sqlite3.Connection, households: Sequence[str], since_ms: int
) -> list[tuple[str, int, float]]:
    """(household, ts_ms, basket total) of the households' purchases since ``since_ms``."""
    out: list[tuple[str, int, float]] = []
    for start in range(0, len(households), 500):
        chunk = tuple(households[start : start + 500])
        marks = ",".join("?" * len(chunk))
        out += conn.execute(
            f"SELECT household, ts_ms, total FROM purchases WHERE household IN ({marks}) AND ts_ms >= ?",  # noqa: S608 - placeholders only
            (*chunk, since_ms),
        ).fetchall()
    return out


def write_scores(conn: sqlite3.Connection, scores: Sequence[CustomerScore]) -> int:
    """Replace the households' scores; only those with analytics consent now (checked in this
    transaction: a withdrawal that committed while they were scored wins). Returns rows written."""
    granted = {str(h) for (h,) in conn.execute(_ANALYTICS_GRANTED)}
    keep = [s.row() for s in scores if s.household in granted]
    conn.executemany(_INSERT_SCORE, keep)
    return len(keep)


def score_of(conn: sqlite3.Connection, household: str) -> CustomerScore | None:
    row = conn.execute(
        f"SELECT {','.join(SCORE_COLUMNS)} FROM customer_scores WHERE household = ?",  # noqa: S608 - fixed names
        (household,),
    ).fetchone()
    return None if row is None else CustomerScore(**dict(zip(SCORE_COLUMNS, row, strict=True)))


def drop_without_analytics(conn: sqlite3.Connection) -> int:
    """Scores and documents of households whose analytics consent is gone (a safety net for the hooks)."""
    return sum(conn.execute(sql).rowcount for sql in _DROP_UNCONSENTED)


def clear_documents(conn: sqlite3.Connection, before_ms: int) -> int:
    """Cached insights documents computed before ``before_ms`` (new scores: rebuilt on the next read)."""
    return conn.execute("DELETE FROM customer_insights WHERE computed_ms < ?", (before_ms,)).rowcount


def cached_document(conn: sqlite3.Connection, household: str) -> bytes | None:
    row = conn.execute("SELECT document FROM customer_insights WHERE household = ?", (household,)).fetchone()
    return None if row is None else str(row[0]).encode()


def store_document(conn: sqlite3.Connection, household: str, document: bytes, now_ms: int) -> bool:
    """Cache a household's insights document, with analytics consent only (checked here)."""
    if not has_analytics(conn, household):
        return False
    conn.execute(
        "INSERT OR REPLACE INTO customer_insights (household, document, computed_ms) VALUES (?, ?, ?)",
        (household, document.decode(), now_ms),
    )
    return True


def delete_household(conn: sqlite3.Connection, household: str) -> dict[str, int]:
    return {
        "customer_scores": conn.execute(
            "DELETE FROM customer_scores WHERE household = ?", (household,)
        ).rowcount,
        "customer_insights": conn.execute(
            "DELETE FROM customer_insights WHERE household = ?", (household,)
        ).rowcount,
    }


def register_hooks(hooks: HouseholdHooks) -> None:
    hooks.on_purchase(_purchase_applied)
    hooks.on_consent(_consent_recorded)
    hooks.on_erasure(_household_erased)


def _purchase_applied(conn: sqlite3.Connection, event: PurchaseApplied) -> list[OutboxEntry]:
    """A new purchase makes the cached document stale: the next read rebuilds it."""
    conn.execute("DELETE FROM customer_insights WHERE household = ?", (event.household,))
    return []


def _consent_recorded(conn: sqlite3.Connection, event: ConsentRecorded) -> None:
    """Withdrawing analytics deletes the household's scores, segment and insights at once."""
    if not event.analytics:
        delete_household(conn, event.household)


def _household_erased(conn: sqlite3.Connection, event: HouseholdErased) -> dict[str, int]:
    return delete_household(conn, event.household)
