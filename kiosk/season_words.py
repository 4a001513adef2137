"""What is in season in the store and the coming public holidays, in the kiosk's language (the daemon's
`edge.predictions.seasonal` sends the figures; the words are the kiosk's, so every language has them)."""

from __future__ import annotations

from kiosk.schemas import Holiday, SeasonalEntry
from kiosk.strings import current, t

SEASON_KEYS = {"trend": "list.season_trend", "season": "list.season_year", "holiday": "list.season_holiday"}


def times(lift: float) -> str:
    """1.63 -> "1.6" (English) or "1,6" (German)."""
    return f"{lift:.1f}".replace(".", t("format.decimal_point"))


def holiday_name(holiday: Holiday) -> str:
    """In English for an English kiosk, else in the store's country's own language."""
    return holiday.name if current().language == "en" else holiday.local_name


def seasonal_reason(entry: SeasonalEntry, holidays: list[Holiday]) -> str:
    named = {h.name: holiday_name(h) for h in holidays}
    holiday = named.get(entry.holiday or "", entry.holiday or "")
    return t(SEASON_KEYS[entry.kind], times=times(entry.lift), holiday=holiday)


def holiday_line(holiday: Holiday) -> str:
    if holiday.days_away <= 1:
        return t("list.holiday_tomorrow", name=holiday_name(holiday))
    return t("list.holiday_in", days=holiday.days_away, name=holiday_name(holiday))
