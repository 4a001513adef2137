"""When the simulated store is open and how busy each day is: the weekly shape and public holidays.

- **Weekly shape**: each weekday scales the chance that a household keeps a planned trip (and makes an
  unplanned top-up trip): Friday and Saturday busier, Sunday quieter. On Sunday the store opens late
  (`sunday_open_minute`), or not at all (`sunday_open=False`, as in Germany); a trip that would have been
  earlier moves to the first hours after opening.
- **Public holidays** of `country` (from the `holidays` package, offline): the store is closed on them
  (or, with `holiday_traffic` > 0 and `holiday_closed=False`, open and quiet); on the eve of one, extra
  households come to stock up (`eve_extra_trip_probability`). A planned trip on a closed day may
  happen the next day instead, as any skipped trip.

Deterministic: a pure function of the date. `simulators.household_history` applies it day by day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from simulators.errors import SimulatorError

DEFAULT_COUNTRY = "DE"  # the demo store's (models.holiday_calendar.DEFAULT_COUNTRY, kept in step by a test)
OPEN_MINUTE, CLOSE_MINUTE = 7 * 60, 22 * 60
# Always closed, whatever the country's calendar says (the simulator's long-standing closing days).
ALWAYS_CLOSED = ((12, 25), (1, 1))
# Monday first: relative chance that a planned trip happens that day (1 = the base show probability).
WEEKDAY_TRAFFIC = (0.85, 0.85, 0.9, 0.95, 1.4, 1.6, 0.6)


class ShoppingCalendarError(SimulatorError, ValueError):
    """A calendar setting is out of range; the message names the field."""


@dataclass(frozen=True, slots=True)
class ShoppingCalendar:
    country: str = DEFAULT_COUNTRY  # ISO 3166 code with a holiday calendar; "" = no public holidays
    weekday_traffic: tuple[float, ...] = WEEKDAY_TRAFFIC
    sunday_open: bool = True
    sunday_open_minute: int = 10 * 60
    holiday_closed: bool = True
    holiday_traffic: float = 0.4  # when open on a holiday (holiday_closed=False)
    eve_extra_trip_probability: float = 0.25  # per household present, on the day before a holiday

    def __post_init__(self) -> None:
        if self.country and self.country not in _supported_countries():
            raise ShoppingCalendarError(
                f"country: unknown country {self.country!r} (an ISO 3166 code with a holiday calendar, e.g. DE)"
            )
        if len(self.weekday_traffic) != 7 or any(not 0 <= w <= 3 for w in self.weekday_traffic):
            raise ShoppingCalendarError("weekday_traffic: seven factors (Monday first), each within 0..3")
        if not OPEN_MINUTE <= self.sunday_open_minute < CLOSE_MINUTE:
            raise ShoppingCalendarError(
                f"sunday_open_minute: must be within {OPEN_MINUTE}..{CLOSE_MINUTE - 1}, got {self.sunday_open_minute}"
            )
        for name in ("holiday_traffic", "eve_extra_trip_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise ShoppingCalendarError(f"{name}: must be within 0..1, got {getattr(self, name)}")

    def is_holiday(self, day: date) -> bool:
        return day in _holidays(self.country, day.year)

    def is_closed(self, day: date) -> bool:
        if (day.month, day.day) in ALWAYS_CLOSED:
            return True
        if day.weekday() == 6 and not self.sunday_open:
            return True
        return self.holiday_closed and self.is_holiday(day)

    def is_eve(self, day: date) -> bool:
        """The day before a public holiday (or an always-closed day), itself open."""
        tomorrow = day + timedelta(days=1)
        special = self.is_holiday(tomorrow) or (tomorrow.month, tomorrow.day) in ALWAYS_CLOSED
        return special and not self.is_closed(day)

    def traffic(self, day: date) -> float:
        """How busy an open day is, relative to an average weekday (0 when closed)."""
        if self.is_closed(day):
            return 0.0
        factor = self.weekday_traffic[day.weekday()]
        return factor * self.holiday_traffic if self.is_holiday(day) else factor

    def opening(self, day: date) -> tuple[int, int]:
        """Opening and closing minute of the day."""
        start = self.sunday_open_minute if day.weekday() == 6 else OPEN_MINUTE
        return start, CLOSE_MINUTE


@lru_cache(maxsize=1)
def _supported_countries() -> frozenset[str]:
    import holidays  # noqa: PLC0415 - about half a second: only when a calendar is built

    return frozenset(holidays.list_supported_countries())


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> frozenset[date]:
    import holidays  # noqa: PLC0415 - see _supported_countries

    return frozenset(holidays.country_holidays(country, years=year)) if country else frozenset()
