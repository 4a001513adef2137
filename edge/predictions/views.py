"""What the prediction endpoints return (docs/customers.md): msgspec structs, encoded as JSON."""

from __future__ import annotations

import msgspec

from edge.predictions.seasonal import HolidayNotice, SeasonalItem


class PredictionItem(msgspec.Struct, frozen=True):
    category: str
    p_within_days: dict[str, float]  # "1", "2", "7", "14" -> P(bought within that many days)
    expected_days: float  # days from today until it is bought again (given within 91 days)
    days_p10: float
    days_p50: float
    days_p90: float
    confidence: float  # P(bought within 7 days of expected_days)


class PredictionsView(msgspec.Struct, frozen=True):
    customer: str
    model_version: str
    scored_ms: int | None  # None: nothing to forecast yet (fewer than 2 purchases of any category)
    predictions: list[PredictionItem]


class ListItem(msgspec.Struct, frozen=True):
    category: str
    reason: str
    days_left: float | None
    probability: float


class ShoppingListView(msgspec.Struct, frozen=True):
    customer: str
    personalised: bool
    model_version: str | None  # the next-basket model that ranked a personalised list; None if generic
    generated_ms: int
    urgent: list[ListItem]
    upcoming: list[ListItem]
    usual: list[ListItem]
    # In season in this store and not on the list (anonymous store statistics: every list has them),
    # and the public holidays of the next two weeks (`edge.predictions.seasonal`).
    seasonal: list[SeasonalItem] = []
    holidays: list[HolidayNotice] = []


class ShelfForecastView(msgspec.Struct, frozen=True):
    shelf: str
    items: int
    minutes_to_empty: float | None  # None: not expected to empty within 24 h
    empty_at_ms: int | None
    baseline_minutes: float | None  # last hour's pick rate extrapolated (None: beyond 24 h or no picks)
    model_version: str
    scored_ms: int
