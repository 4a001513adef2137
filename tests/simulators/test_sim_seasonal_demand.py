"""Seasonal demand in the household simulator (`HouseholdSimConfig.seasonal_demand`,
`simulators.seasonal_demand`): the factors follow the documented tables and the store's calendar, the
store's simulated sales show the seasons and the pre-Christmas peak, and off changes nothing."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from simulators import seasonal_demand
from simulators.household_days import LINE_COLUMNS
from simulators.household_history import HouseholdSimConfig, HouseholdSimulation, simulate_households
from simulators.household_population import DEMO_CATEGORY_TRAITS
from simulators.seasonal_demand import CHRISTMAS, EASTER, HOLIDAY, SEASONS, SeasonalDemand
from simulators.shopping_calendar import ShoppingCalendar

NAMES = list(DEMO_CATEGORY_TRAITS)
# From March to early February: October, the ten days before Christmas, July and January, all well
# after the simulation's first weeks (which start from an arbitrary stock).
YEAR = HouseholdSimConfig(seed=5, households=400, days=340, start=date(2024, 3, 1))
CHRISTMAS_RUN_UP = (date(2024, 12, 15), date(2024, 12, 24))
OCTOBER = (date(2024, 10, 1), date(2024, 10, 31))
JULY = (date(2024, 7, 1), date(2024, 7, 31))
JANUARY = (date(2025, 1, 8), date(2025, 1, 31))


def _season(name: str, day: date) -> float:
    amplitude, peak = SEASONS.get(name, (0.0, 0))
    return 1 + amplitude * math.cos(2 * math.pi * (day.timetuple().tm_yday - peak) / 365.25)


def test_the_factors_follow_the_tables_and_the_calendars_holidays() -> None:
    demand = SeasonalDemand(NAMES, ShoppingCalendar(country="DE"))
    assert demand.easter(2024) == date(2024, 3, 31)  # Good Friday and Easter Monday are German holidays
    assert demand.easter(2025) == date(2025, 4, 20)
    assert SeasonalDemand(NAMES, ShoppingCalendar(country="")).easter(2024) is None

    def factor(name: str, day: date) -> float:
        return float(demand.factors(day)[NAMES.index(name)])

    for name, lift in CHRISTMAS.items():
        assert factor(name, date(2024, 12, 15)) == pytest.approx(_season(name, date(2024, 12, 15)) * lift)
        assert factor(name, date(2024, 12, 24)) == pytest.approx(_season(name, date(2024, 12, 24)) * lift)
        assert factor(name, date(2024, 12, 14)) == pytest.approx(_season(name, date(2024, 12, 14)))
    for name, lift in EASTER.items():
        assert factor(name, date(2024, 3, 28)) == pytest.approx(_season(name, date(2024, 3, 28)) * lift)
        assert factor(name, date(2024, 3, 31)) == pytest.approx(_season(name, date(2024, 3, 31)))
    for name, lift in HOLIDAY.items():  # 1 May is a public holiday in Germany
        assert factor(name, date(2024, 4, 30)) == pytest.approx(_season(name, date(2024, 4, 30)) * lift)
        assert factor(name, date(2024, 4, 27)) == pytest.approx(_season(name, date(2024, 4, 27)))
    assert (
        factor("soup", date(2024, 1, 15))
        > factor("soup", date(2024, 10, 15))
        > factor("soup", date(2024, 7, 15))
    )
    assert factor(
        "ice-cream", date(2023, 7, 19)
    )  # day 200 of a common year == pytest.approx(1 + SEASONS["ice-cream"][0])
    assert factor("milk", date(2024, 12, 20)) == factor("milk", date(2024, 7, 1)) == 1.0


def _lines_per_household_day(sim: HouseholdSimulation, category: str, window: tuple[date, date]) -> float:
    """Lines of ``category`` per household present, over the window's open days."""
    first, last = ((d - sim.config.start).days for d in window)
    open_days = [d for d in range(first, last + 1) if np.any(sim.day == d)]
    truth = sim.population.households
    joined = np.array([h.joined_day for h in truth])
    gone = np.array([h.churn_day if h.churn_day is not None else sim.config.days for h in truth])
    present = sum(int(((joined <= d) & (d < gone)).sum()) for d in open_days)
    column = [p.name for p in sim.profiles].index(category)
    return float(((sim.category == column) & np.isin(sim.day, open_days)).sum()) / present


def _lift(sim: HouseholdSimulation, category: str, peak: tuple[date, date], base: tuple[date, date]) -> float:
    return _lines_per_household_day(sim, category, peak) / _lines_per_household_day(sim, category, base)


def test_sales_rise_before_christmas_and_follow_the_seasons() -> None:
    off = simulate_households(YEAR)
    on = simulate_households(replace(YEAR, seasonal_demand=True))
    for name in ("chocolate", "biscuits", "flour"):
        # The categories' festive boost already lifts them somewhat; the run-up to Christmas much more.
        assert _lift(on, name, CHRISTMAS_RUN_UP, OCTOBER) > 1.8, name
        assert _lift(on, name, CHRISTMAS_RUN_UP, OCTOBER) > 1.25 * _lift(
            off, name, CHRISTMAS_RUN_UP, OCTOBER
        ), name
    assert _lift(on, "ice-cream", JULY, JANUARY) > 1.2 * _lift(off, "ice-cream", JULY, JANUARY)
    assert _lift(on, "salad", JULY, JANUARY) > 1.2 * _lift(off, "salad", JULY, JANUARY)
    assert _lift(on, "soup", JANUARY, JULY) > 1.2 * _lift(off, "soup", JANUARY, JULY)
    # A category without seasonal demand keeps its shape.
    assert _lift(on, "milk", CHRISTMAS_RUN_UP, OCTOBER) == pytest.approx(
        _lift(off, "milk", CHRISTMAS_RUN_UP, OCTOBER), rel=0.1
    )


def test_seasonal_demand_acts_only_through_its_factors(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every factor 1 the run is the run without seasonal demand, line for line: the option draws
    no random numbers of its own, so off is exactly the simulation as it was."""
    config = replace(YEAR, households=120, days=150, start=date(2024, 10, 1))
    off = simulate_households(config)
    for table in ("SEASONS", "CHRISTMAS", "EASTER", "HOLIDAY"):
        monkeypatch.setattr(seasonal_demand, table, {})
    flat = simulate_households(replace(config, seasonal_demand=True))
    for name in LINE_COLUMNS:
        assert np.array_equal(getattr(off, name), getattr(flat, name)), name
    monkeypatch.undo()
    assert simulate_households(replace(config, seasonal_demand=True)).n_lines != off.n_lines
