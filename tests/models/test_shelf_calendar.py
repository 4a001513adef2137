"""Public-holiday features (one function for training and the edge), the store country setting, and the
simulator's weekly and holiday shape that the shelf model learns from."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from edge.config import load_config, parse_config
from edge.errors import ConfigError
from models.holiday_calendar import (
    DAYS_TO_HOLIDAY_CAP,
    DEFAULT_COUNTRY,
    UnknownCountryError,
    check_country,
    holiday_columns,
    holiday_days,
)
from models.shelf import PickStream, S, shelf_features
from simulators import shopping_calendar
from simulators.household_history import HouseholdSimConfig, HouseholdSimulation, simulate_households
from simulators.shopping_calendar import ShoppingCalendar, ShoppingCalendarError

EPOCH = date(1970, 1, 1)


def _day(text: str) -> int:
    return (date.fromisoformat(text) - EPOCH).days


def test_holiday_columns_for_german_unity_day() -> None:
    days = [_day(d) for d in ("2024-09-30", "2024-10-02", "2024-10-03", "2024-10-04")]
    cols = holiday_columns(days, "DE")
    assert cols["holiday_today"].tolist() == [0, 0, 1, 0]
    assert cols["holiday_eve"].tolist() == [0, 1, 0, 0]
    # From 4 October the next German holiday is Christmas (81 days): capped.
    assert cols["days_to_holiday"].tolist() == [3, 1, DAYS_TO_HOLIDAY_CAP, DAYS_TO_HOLIDAY_CAP]


def test_back_to_back_holidays_and_the_year_boundary() -> None:
    cols = holiday_columns([_day("2024-12-24"), _day("2024-12-25"), _day("2024-12-31")], "DE")
    assert cols["holiday_today"].tolist() == [0, 1, 0]
    # 25 December is a holiday before another one: a holiday, not an eve.
    assert cols["holiday_eve"].tolist() == [1, 0, 1]
    assert cols["days_to_holiday"].tolist() == [1, 1, 1]  # 1 January is in next year's calendar


def test_another_country_has_other_holidays() -> None:
    assert holiday_columns([_day("2024-07-04")], "US")["holiday_today"].tolist() == [1]
    assert holiday_columns([_day("2024-07-04")], "DE")["holiday_today"].tolist() == [0]
    assert _day("2024-10-03") in holiday_days("DE", _day("2024-10-01"), _day("2024-10-31")).tolist()


def test_no_country_no_holidays() -> None:
    cols = holiday_columns([_day("2024-12-25")], "")
    assert (cols["holiday_today"][0], cols["holiday_eve"][0]) == (0, 0)
    assert cols["days_to_holiday"][0] == DAYS_TO_HOLIDAY_CAP


def test_unknown_country_is_refused() -> None:
    assert check_country("FR") == "FR"
    with pytest.raises(UnknownCountryError, match="'XX'"):
        check_country("XX")


def test_shelf_features_carry_the_streams_country() -> None:
    minute = _day("2024-10-02") * 1440 + 600
    picks = ((0,), [minute - 30], [2])
    german = shelf_features(PickStream.build(("A1-1",), *picks, country="DE"), [0], minute, [4])[0]
    nowhere = shelf_features(PickStream.build(("A1-1",), *picks), [0], minute, [4])[0]
    assert (german[S["holiday_eve"]], german[S["days_to_holiday"]]) == (1, 1)
    assert (nowhere[S["holiday_eve"]], nowhere[S["days_to_holiday"]]) == (0, DAYS_TO_HOLIDAY_CAP)
    # Everything else is the same.
    others = [i for name, i in S.items() if not name.startswith(("holiday", "days_to"))]
    assert german[others].tolist() == nowhere[others].tolist()


def test_the_store_country_setting_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "storeedge.toml"
    path.write_text('[store]\ncountry = "FR"\n')
    assert load_config(path).store.country == "FR"
    assert parse_config({}).store.country == DEFAULT_COUNTRY
    path.write_text('[store]\ncountry = "Germany"\n')
    with pytest.raises(ConfigError, match=r"\[store\] country: unknown country 'Germany'"):
        load_config(path)


def test_simulator_and_models_agree_on_the_default_country() -> None:
    assert shopping_calendar.DEFAULT_COUNTRY == DEFAULT_COUNTRY


def test_shopping_calendar_rules() -> None:
    cal = ShoppingCalendar()
    assert cal.is_closed(date(2024, 10, 3))
    assert cal.traffic(date(2024, 10, 3)) == 0
    assert cal.is_eve(date(2024, 10, 2))
    assert not cal.is_eve(date(2024, 10, 3))
    assert cal.traffic(date(2024, 10, 5)) > cal.traffic(date(2024, 10, 1))  # Saturday > Tuesday
    assert cal.opening(date(2024, 10, 6))[0] > cal.opening(date(2024, 10, 7))[0]  # Sunday opens late
    assert ShoppingCalendar(sunday_open=False).is_closed(date(2024, 10, 6))
    quiet = ShoppingCalendar(holiday_closed=False)
    assert 0 < quiet.traffic(date(2024, 10, 3)) < quiet.traffic(date(2024, 10, 10))
    with pytest.raises(ShoppingCalendarError, match="country"):
        ShoppingCalendar(country="XX")
    with pytest.raises(ShoppingCalendarError, match="weekday_traffic"):
        ShoppingCalendar(weekday_traffic=(1.0,) * 6)


@pytest.fixture(scope="module")
def autumn() -> HouseholdSimulation:
    """Two months around German Unity Day (Thursday 3 October 2024)."""
    return simulate_households(HouseholdSimConfig(seed=5, households=800, days=63, start=date(2024, 9, 2)))


def _trips(sim: HouseholdSimulation) -> dict[date, int]:
    _, first = np.unique(sim.basket, return_index=True)
    counts = np.bincount(sim.day[first], minlength=sim.config.days)
    return {sim.config.start + timedelta(days=d): int(n) for d, n in enumerate(counts)}


def _ordinary_mean(trips: dict[date, int], weekday: int, cal: ShoppingCalendar) -> float:
    days = [
        n
        for d, n in trips.items()
        if d.weekday() == weekday
        and not cal.is_holiday(d)
        and not cal.is_eve(d)
        and not cal.is_holiday(d - timedelta(days=1))
    ]
    return float(np.mean(days))


def test_simulated_trips_follow_the_week_and_the_holidays(autumn: HouseholdSimulation) -> None:
    trips = _trips(autumn)
    cal = autumn.config.calendar
    thursday = _ordinary_mean(trips, 3, cal)
    wednesday = _ordinary_mean(trips, 2, cal)
    assert trips[date(2024, 10, 3)] == 0  # closed on the holiday
    assert trips[date(2024, 10, 2)] > 1.3 * wednesday  # the eve is busier than an ordinary Wednesday
    assert trips[date(2024, 10, 4)] > _ordinary_mean(trips, 4, cal)  # the trips skipped come the day after
    saturday, sunday = _ordinary_mean(trips, 5, cal), _ordinary_mean(trips, 6, cal)
    assert saturday > 1.15 * thursday
    assert _ordinary_mean(trips, 4, cal) > 1.1 * thursday  # Friday
    assert sunday < 0.7 * thursday
    # Sunday opens late: no trip before its opening.
    sundays = np.asarray([(autumn.config.start + timedelta(days=int(d))).weekday() == 6 for d in autumn.day])
    assert autumn.minute[sundays].min() >= cal.sunday_open_minute
    assert autumn.minute[~sundays].min() < cal.sunday_open_minute


def test_a_quiet_open_holiday(autumn: HouseholdSimulation) -> None:
    quiet = simulate_households(replace(autumn.config, calendar=ShoppingCalendar(holiday_closed=False)))
    trips = _trips(quiet)
    assert 0 < trips[date(2024, 10, 3)] < 0.7 * _ordinary_mean(trips, 3, quiet.config.calendar)
