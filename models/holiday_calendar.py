"""Public-holiday features of store-local days, from the `holidays` package (offline calendars).

One function, `holiday_columns`, computes them for training (the simulator's country) and on the edge
(``[store] country``), so both see the same numbers:

| feature           | definition                                                                 |
|-------------------|----------------------------------------------------------------------------|
| `holiday_today`   | 1 if the day is a public holiday of the country                            |
| `holiday_eve`     | 1 if the next day is a public holiday and this one is not                  |
| `days_to_holiday` | days until the next public holiday after this day (1 = tomorrow), capped   |

A country of ``""`` has no holidays (the features are 0, 0 and the cap), which is also what a model
trained without them would have seen on an ordinary day.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:  # numpy loads with the functions that compute: `storeedge config check` only checks a code
    import numpy as np
    import numpy.typing as npt

    I64: TypeAlias = npt.NDArray[np.int64]
    F64: TypeAlias = npt.NDArray[np.float64]

HOLIDAY_FEATURES: tuple[str, ...] = ("holiday_today", "holiday_eve", "days_to_holiday")
DAYS_TO_HOLIDAY_CAP = 14
DEFAULT_COUNTRY = "DE"  # the demo store's and the household simulator's country
EPOCH = date(1970, 1, 1)


class UnknownCountryError(ValueError):
    """A country code the holiday calendars do not know."""


@lru_cache(maxsize=1)
def supported_countries() -> frozenset[str]:
    """ISO 3166 codes (alpha-2 and alpha-3) with a holiday calendar."""
    import holidays  # noqa: PLC0415 - about half a second: only when a country is asked for

    # The registry's codes are `list_supported_countries()`'s keys without loading every calendar for
    # its subdivisions (a tenth of a second, at every `storeedge config check`).
    return frozenset(holidays.registry.EntityLoader.get_country_codes(include_aliases=True))


def check_country(country: str) -> str:
    """``country`` if it has a holiday calendar ("" = none); else `UnknownCountryError`."""
    # The default (the demo's and the simulator's country) has one (tests/test_cli_imports.py): knowing
    # that needs no import of `holidays`, the slowest part of `storeedge config check` otherwise.
    if country and country != DEFAULT_COUNTRY and country not in supported_countries():
        raise UnknownCountryError(
            f"unknown country {country!r}: an ISO 3166 code with a public-holiday calendar, e.g. DE, FR, GB, US"
        )
    return country


@lru_cache(maxsize=64)
def _holiday_days_of_year(country: str, year: int) -> tuple[int, ...]:
    import holidays  # noqa: PLC0415 - see supported_countries

    calendar = holidays.country_holidays(check_country(country), years=year)
    return tuple(sorted((day - EPOCH).days for day in calendar))


def holiday_days(country: str, first_day: int, last_day: int) -> I64:
    """Sorted epoch days of the country's public holidays within [first_day, last_day]."""
    import numpy as np  # noqa: PLC0415

    if not country or last_day < first_day:
        return np.zeros(0, dtype=np.int64)
    first_year = (EPOCH + timedelta(days=first_day)).year
    last_year = (EPOCH + timedelta(days=last_day)).year
    days = [d for year in range(first_year, last_year + 1) for d in _holiday_days_of_year(country, year)]
    out = np.asarray(days, dtype=np.int64)
    return out[(out >= first_day) & (out <= last_day)]


def holiday_columns(day: npt.ArrayLike, country: str) -> dict[str, F64]:
    """`HOLIDAY_FEATURES` for store-local epoch days (any shape; returned as float64 of the same shape)."""
    import numpy as np  # noqa: PLC0415

    d = np.asarray(day, dtype=np.int64)
    if d.size == 0:
        empty = np.zeros(d.shape)
        return {"holiday_today": empty, "holiday_eve": empty.copy(), "days_to_holiday": empty.copy()}
    table = holiday_days(country, int(d.min()), int(d.max()) + DAYS_TO_HOLIDAY_CAP + 1)
    today = np.isin(d, table)
    if table.size:
        after = np.searchsorted(table, d, side="right")
        nxt = table[np.minimum(after, table.size - 1)]
        until = np.where(after < table.size, nxt - d, DAYS_TO_HOLIDAY_CAP)
    else:
        until = np.full(d.shape, DAYS_TO_HOLIDAY_CAP)
    return {
        "holiday_today": today.astype(np.float64),
        "holiday_eve": ((until == 1) & ~today).astype(np.float64),
        "days_to_holiday": np.minimum(until, DAYS_TO_HOLIDAY_CAP).astype(np.float64),
    }


@lru_cache(maxsize=64)
def holiday_names(country: str, year: int, language: str | None = None) -> tuple[tuple[date, str], ...]:
    """The country's public holidays of ``year`` with their names (in ``language``, e.g. "en_US", where
    the calendar has it; None: the country's own language), by date; none for ``""``."""
    if not country:
        return ()
    import holidays  # noqa: PLC0415 - see supported_countries

    # Without a language the package follows the process's locale (LANG): name one explicitly.
    calendar = holidays.country_holidays(check_country(country), years=year)
    wanted = language if language in calendar.supported_languages else calendar.default_language
    if wanted is not None:
        calendar = holidays.country_holidays(check_country(country), years=year, language=wanted)
    return tuple(sorted(calendar.items()))
