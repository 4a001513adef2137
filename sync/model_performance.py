"""How the served models did, from recorded outcomes: the same questions on a store (SQLite) and at central
(PostgreSQL, every store), with the same SQL (written to run on both) and the same response types.

- **per category and next-purchase model version** (``GET /api/v1/analytics/performance``): predictions
  answered by a purchase, the share whose expected date was within +-1 and +-7 days, the mean deviation
  (expected - actual, days: positive = the purchase came sooner than expected) and the mean absolute one,
  and calibration of P(bought within 7 days): its mean against the share that came within 7 days, and
  the Brier score.
- **per model version** (``GET /api/v1/ab-tests/performance/comparison``): the same for each next-purchase
  version over all categories, and for each next-basket version the list hit rate over trips.

Outcomes exist only for predictions followed by a purchase of the category (a store cannot see a purchase
that never happens), so these are conditional on a purchase; `models evaluate` reports the unconditional
scores on held-out weeks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec


class CategoryPerformance(msgspec.Struct, frozen=True):
    category: str
    model_version: str | None
    predictions: int
    within_1d: float  # share with |expected - actual| <= 1 day
    within_7d: float
    mean_deviation_days: float  # expected - actual
    mean_abs_deviation_days: float
    mean_p7: float | None  # the mean predicted P(within 7 days) ...
    bought_within_7d: float  # ... and the share that was (calibration)
    brier_7d: float | None


class PurchaseVersion(msgspec.Struct, frozen=True):
    model_version: str | None
    households: int
    predictions: int
    within_7d: float
    mean_abs_deviation_days: float
    brier_7d: float | None


class BasketVersion(msgspec.Struct, frozen=True):
    model_version: str | None
    households: int
    trips: int
    list_hit_rate: float  # categories bought that were on the list / categories bought, over every trip


class VersionComparison(msgspec.Struct, frozen=True):
    since_ms: int
    next_purchase: list[PurchaseVersion]
    next_basket: list[BasketVersion]


DAY_MS = 86_400_000


def window_start(days: str | None, now_ms: int) -> int:
    """The start of a ``?days=N`` window (1..3660, default 90); `ValueError` saying what is wrong."""
    try:
        n = int(days if days is not None else "90")
    except ValueError:
        raise ValueError("days: expected an integer") from None
    if not 1 <= n <= 3660:
        raise ValueError("days: expected 1..3660")
    return now_ms - n * DAY_MS


_OUTCOME_MEASURES = (
    "count(*), avg(CASE WHEN abs(expected_days - actual_days) <= 1 THEN 1.0 ELSE 0.0 END),"
    " avg(CASE WHEN abs(expected_days - actual_days) <= 7 THEN 1.0 ELSE 0.0 END),"
    " avg(expected_days - actual_days), avg(abs(expected_days - actual_days)), avg(p7),"
    " avg(CASE WHEN actual_days <= 7 THEN 1.0 ELSE 0.0 END),"
    " avg((p7 - CASE WHEN actual_days <= 7 THEN 1.0 ELSE 0.0 END) * (p7 - CASE WHEN actual_days <= 7 THEN 1.0 ELSE 0.0 END))"
)


def by_category_sql(mark: str) -> str:
    """The per-category query; ``mark`` is the placeholder of the since-time (``?`` or ``$1``)."""
    return (
        f"SELECT category, model_version, {_OUTCOME_MEASURES} FROM prediction_outcomes"  # noqa: S608 - fixed text
        f" WHERE purchased_ms >= {mark} AND expected_days IS NOT NULL AND actual_days IS NOT NULL"
        " GROUP BY category, model_version ORDER BY category, model_version"
    )


def purchase_versions_sql(mark: str) -> str:
    return (
        "SELECT model_version, count(DISTINCT household), count(*),"  # noqa: S608 - fixed text
        " avg(CASE WHEN abs(expected_days - actual_days) <= 7 THEN 1.0 ELSE 0.0 END),"
        " avg(abs(expected_days - actual_days)),"
        " avg((p7 - CASE WHEN actual_days <= 7 THEN 1.0 ELSE 0.0 END) * (p7 - CASE WHEN actual_days <= 7 THEN 1.0 ELSE 0.0 END))"
        f" FROM prediction_outcomes WHERE purchased_ms >= {mark} AND expected_days IS NOT NULL"
        " AND actual_days IS NOT NULL GROUP BY model_version ORDER BY model_version"
    )


def basket_versions_sql(since: str) -> str:
    """``since``: the condition on the trip's time (``purchased_ms >= ?`` on a store, the partition key at
    central)."""
    return (
        "SELECT basket_model_version, count(DISTINCT household), count(*),"  # noqa: S608 - fixed text
        " sum(on_list) * 1.0 / nullif(sum(categories), 0)"
        f" FROM list_outcomes WHERE {since} GROUP BY basket_model_version ORDER BY basket_model_version"
    )


def _f(value: Any) -> float:
    return 0.0 if value is None else float(value)


def _maybe(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)


def category_rows(rows: Sequence[Sequence[Any]]) -> list[CategoryPerformance]:
    return [
        CategoryPerformance(
            str(r[0]),
            r[1],
            int(r[2]),
            round(_f(r[3]), 6),
            round(_f(r[4]), 6),
            round(_f(r[5]), 6),
            round(_f(r[6]), 6),
            _maybe(r[7]),
            round(_f(r[8]), 6),
            _maybe(r[9]),
        )
        for r in rows
    ]


def comparison(
    since_ms: int, purchase: Sequence[Sequence[Any]], basket: Sequence[Sequence[Any]]
) -> VersionComparison:
    return VersionComparison(
        since_ms,
        [
            PurchaseVersion(r[0], int(r[1]), int(r[2]), round(_f(r[3]), 6), round(_f(r[4]), 6), _maybe(r[5]))
            for r in purchase
        ],
        [BasketVersion(r[0], int(r[1]), int(r[2]), round(_f(r[3]), 6)) for r in basket],
    )
