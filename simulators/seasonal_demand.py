"""Seasonal demand for the household simulator (`HouseholdSimConfig.seasonal_demand`, off by default).

With it on, each category's daily use is multiplied by a factor of the date, and a household shopping
that day buys for its use at that pace (it knows Christmas is coming), so the store's own sales have
seasons and pre-holiday peaks. The factors multiply the categories' own mild seasonality and festive
boost (`simulators.household_population.DEMO_CATEGORY_TRAITS`); a category not named here keeps 1.

**Seasons** (``1 + amplitude * cos(2 pi (day of year - peak) / 365.25)``):

| category | amplitude | peak |
|---|---|---|
| soup | 0.30 | 15 January |
| tea | 0.25 | 15 January |
| chocolate, biscuits | 0.20 | 16 December |
| ice-cream | 0.50 | 19 July |
| water, salad | 0.30 | 19 July (salad 9 July) |
| soft-drinks | 0.25 | 19 July |

So soup, tea, chocolate and biscuits rise through autumn into winter; ice-cream, water, soft drinks
and salad sell in summer.

**Before holidays** (on top of the season; the first window that applies counts):

| window | categories (factor) |
|---|---|
| the 10 days before Christmas (15-24 December) | flour 2.5, sugar 2.2, butter 2.0, chocolate 1.8, biscuits 1.8, coffee 1.4 |
| the 7 days before Easter Sunday | chocolate 1.5, eggs 1.5, flour 1.3, sugar 1.2, butter 1.2 |
| the 2 days before any other public holiday (or 1 January) | soft-drinks 1.3, crisps 1.3, water 1.15 |

Easter is found in the store's calendar (`simulators.shopping_calendar`): the Sunday between 22 March
and 25 April whose Good Friday and/or Easter Monday is a public holiday there (none without a holiday
calendar). Christmas Day and New Year's Day are always closed in the simulator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from simulators.shopping_calendar import ALWAYS_CLOSED, ShoppingCalendar

# category -> (amplitude, peak day of year)
SEASONS: dict[str, tuple[float, int]] = {
    "soup": (0.30, 15),
    "tea": (0.25, 15),
    "chocolate": (0.20, 350),
    "biscuits": (0.20, 350),
    "ice-cream": (0.50, 200),
    "water": (0.30, 200),
    "soft-drinks": (0.25, 200),
    "salad": (0.30, 190),
}
CHRISTMAS_DAYS = 10
CHRISTMAS: dict[str, float] = {
    "flour": 2.5,
    "sugar": 2.2,
    "butter": 2.0,
    "chocolate": 1.8,
    "biscuits": 1.8,
    "coffee": 1.4,
}
EASTER_DAYS = 7
EASTER: dict[str, float] = {"chocolate": 1.5, "eggs": 1.5, "flour": 1.3, "sugar": 1.2, "butter": 1.2}
HOLIDAY_DAYS = 2
HOLIDAY: dict[str, float] = {"soft-drinks": 1.3, "crisps": 1.3, "water": 1.15}
EASTER_WINDOW = ((3, 22), (4, 25))  # the earliest and latest Easter Sunday


class SeasonalDemand:
    """Per date, the factor on each category's use (in the order of ``categories``)."""

    def __init__(self, categories: Sequence[str], calendar: ShoppingCalendar) -> None:
        self._calendar = calendar
        self._amplitude = _column(categories, {c: a for c, (a, _) in SEASONS.items()}, 0.0)
        self._peak = _column(categories, {c: float(p) for c, (_, p) in SEASONS.items()}, 0.0)
        self._christmas = _column(categories, CHRISTMAS, 1.0)
        self._easter = _column(categories, EASTER, 1.0)
        self._holiday = _column(categories, HOLIDAY, 1.0)
        self._easter_of: dict[int, date | None] = {}

    def factors(self, day: date) -> npt.NDArray[np.float64]:
        doy = day.timetuple().tm_yday
        season: npt.NDArray[np.float64] = 1 + self._amplitude * np.cos(
            2 * math.pi * (doy - self._peak) / 365.25
        )
        return season * self._holiday_factor(day)

    def easter(self, year: int) -> date | None:
        """Easter Sunday as the calendar's holidays show it (see the module docstring)."""
        if year not in self._easter_of:
            self._easter_of[year] = self._find_easter(year)
        return self._easter_of[year]

    def _holiday_factor(self, day: date) -> npt.NDArray[np.float64]:
        if 0 < (date(day.year, 12, 25) - day).days <= CHRISTMAS_DAYS:
            return self._christmas
        easter = self.easter(day.year)
        if easter is not None and 0 < (easter - day).days <= EASTER_DAYS:
            return self._easter
        ahead = (day + timedelta(days=k) for k in range(1, HOLIDAY_DAYS + 1))
        if any(self._calendar.is_holiday(d) or (d.month, d.day) in ALWAYS_CLOSED for d in ahead):
            return self._holiday
        return np.ones_like(self._holiday)

    def _find_easter(self, year: int) -> date | None:
        (m0, d0), (m1, d1) = EASTER_WINDOW
        day, last = date(year, m0, d0), date(year, m1, d1)
        either = None
        while day <= last:
            if day.weekday() == 6:
                friday = self._calendar.is_holiday(day - timedelta(days=2))
                monday = self._calendar.is_holiday(day + timedelta(days=1))
                if friday and monday:
                    return day
                if (friday or monday) and either is None:
                    either = day
            day += timedelta(days=1)
        return either


def _column(categories: Sequence[str], table: Mapping[str, float], default: float) -> npt.NDArray[np.float64]:
    return np.array([table.get(name, default) for name in categories], dtype=float)
