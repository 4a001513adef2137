"""What a kiosk reads of a household's predictions: its shopping list (personalised from the cached
scores, scored on demand when it has consent and nothing is cached, else the store's most bought
categories this week), with what is in season in the store and the coming public holidays
(`edge.predictions.seasonal`), and its next-purchase forecasts. Days left count from each row's origin day in
store-local days, so a cached list stays right as the days pass, and agree with the reason beside them
(`models.shopping_list.shown_days_left`: due now past the usual gap, no number for a lapsed habit);
urgent and coming-up items are shown soonest first.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Awaitable, Callable

import msgspec

from edge.customers.tables import has_consent
from edge.metrics import Counter
from edge.predictions.clock import StoreClock
from edge.predictions.scoring import local_day
from edge.predictions.seasonal import SeasonalOutlook
from edge.predictions.tables import MS_PER_DAY, popular_categories
from edge.predictions.views import ListItem, PredictionItem, PredictionsView, ShoppingListView
from edge.store.db import ReadThread
from models.shopping_list import shown_days_left

GENERIC_REASON = "popular in this store this week"
GENERIC_TTL_MS = 300_000
SEASONAL_LIMIT = 3
WEEK_MS = 7 * MS_PER_DAY


class HouseholdLists:
    def __init__(
        self,
        live: ReadThread,
        score_on_demand: Callable[[str], Awaitable[bool]],
        counter: Counter,
        clock: StoreClock,
        limit: int,
        default_version: Callable[[], str],
        seasonal: SeasonalOutlook | None = None,
    ) -> None:
        self._seasonal = seasonal
        self._live = live
        self._score_on_demand = score_on_demand
        self._counter = counter
        self._clock = clock
        self._limit = limit
        self._default_version = default_version
        self._generic: tuple[int, list[tuple[str, float]]] | None = None

    def forget_generic(self) -> None:
        """Drop the cached generic list (the models changed)."""
        self._generic = None

    async def shopping_list(self, household: str, now_ms: int | None = None) -> ShoppingListView:
        """The household's list: personalised from its cached scores (scored now if it has consent and
        nothing is cached yet), else the store's most bought categories this week."""
        now = self._clock.now_ms() if now_ms is None else now_ms
        consent, rows = await self._live.run(lambda c: _list_rows(c, household))
        if consent and not rows and await self._score_on_demand(household):
            consent, rows = await self._live.run(lambda c: _list_rows(c, household))
        if not consent or not rows:
            self._counter.inc("generic")
            return await self._generic_list(household, now)
        self._counter.inc("personalised")
        today = local_day(now, self._clock.utc_offset_min(now))
        groups: dict[str, list[ListItem]] = {"urgent": [], "upcoming": [], "usual": []}
        model = str(rows[0][5])
        for category, urgency, reason, expected, probability, _model, origin, p7, past in rows:
            left = None if expected is None else max(0.0, float(expected) + int(origin) - today)
            days_left = shown_days_left(left, p7, bool(past))
            groups[str(urgency)].append(
                ListItem(str(category), str(reason), days_left, round(float(probability), 4))
            )
        for soon in ("urgent", "upcoming"):  # the soonest first, no number last; then the likeliest
            groups[soon].sort(
                key=lambda i: (math.inf if i.days_left is None else i.days_left, -i.probability)
            )
        return self._with_season(
            ShoppingListView(
                household, True, model, now, groups["urgent"], groups["upcoming"], groups["usual"]
            )
        )

    async def generic_list(self, household: str, now_ms: int | None = None) -> ShoppingListView:
        """The store's list for anyone (most bought this week), whatever the household's consent: what
        an unverified kiosk session gets (docs/customers.md)."""
        self._counter.inc("generic")
        return await self._generic_list(household, self._clock.now_ms() if now_ms is None else now_ms)

    async def predictions(self, household: str, now_ms: int | None = None) -> PredictionsView | None:
        """Next-purchase forecasts of the household's categories bought at least twice, soonest first;
        None without personalisation consent."""
        now = self._clock.now_ms() if now_ms is None else now_ms
        consent, cached, rows = await self._live.run(lambda c: _prediction_rows(c, household))
        if not consent:
            return None
        if not cached and await self._score_on_demand(household):
            consent, cached, rows = await self._live.run(lambda c: _prediction_rows(c, household))
        today = local_day(now, self._clock.utc_offset_min(now))
        items = []
        for category, p1, p2, p7, p14, expected, q10, q50, q90, confidence, _m, _s, origin in rows:
            shift = int(origin) - today
            items.append(
                PredictionItem(
                    str(category),
                    {"1": p1, "2": p2, "7": p7, "14": p14},
                    max(0.0, expected + shift),
                    max(0.0, q10 + shift),
                    max(0.0, q50 + shift),
                    max(0.0, q90 + shift),
                    confidence,
                )
            )
        items.sort(key=lambda i: (i.expected_days, i.category))
        model = str(rows[0][10]) if rows else self._default_version()
        scored = max(int(r[11]) for r in rows) if rows else None
        return PredictionsView(household, model, scored, items)

    async def _generic_list(self, household: str, now: int) -> ShoppingListView:
        cached = self._generic
        if cached is None or not 0 <= now - cached[0] < GENERIC_TTL_MS:
            limit = self._limit
            popular = await self._live.run(lambda c: popular_categories(c, now - WEEK_MS, limit))
            cached = self._generic = (now, popular)
        usual = [ListItem(category, GENERIC_REASON, None, share) for category, share in cached[1]]
        return self._with_season(ShoppingListView(household, False, None, now, [], [], usual))

    def _with_season(self, view: ShoppingListView) -> ShoppingListView:
        """``view`` with the store's seasonal items that are not on it, and the coming holidays."""
        if self._seasonal is None:
            return view
        listed = {i.category for group in (view.urgent, view.upcoming, view.usual) for i in group}
        seasonal = self._seasonal.for_list(listed, SEASONAL_LIMIT)
        return msgspec.structs.replace(view, seasonal=seasonal, holidays=list(self._seasonal.holidays))


ListRow = tuple[str, str, str, float | None, float, str, int, float | None, int]


def _list_rows(c: sqlite3.Connection, household: str) -> tuple[bool, list[ListRow]]:
    if not has_consent(c, household):
        return False, []
    rows = c.execute(
        "SELECT category, urgency, reason, expected_days, basket_probability, basket_model_version, origin_day,"
        " p7, past_gap FROM predictions WHERE household = ? AND list_rank IS NOT NULL ORDER BY list_rank",
        (household,),
    ).fetchall()
    return True, rows


def _prediction_rows(c: sqlite3.Connection, household: str) -> tuple[bool, bool, list[tuple[float, ...]]]:
    if not has_consent(c, household):
        return False, False, []
    cached = c.execute("SELECT 1 FROM predictions WHERE household = ? LIMIT 1", (household,)).fetchone()
    rows = c.execute(
        "SELECT category, p1, p2, p7, p14, expected_days, days_p10, days_p50, days_p90, confidence,"
        " model_version, scored_ms, origin_day FROM predictions WHERE household = ? AND p1 IS NOT NULL",
        (household,),
    ).fetchall()
    return True, cached is not None, rows
