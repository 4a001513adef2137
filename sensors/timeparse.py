"""Timestamps on the wire: epoch milliseconds or RFC 3339 text, normalised to epoch milliseconds.

Text is accepted only in RFC 3339's `date-time` form (section 5.6), checked by a strict pattern before
any date arithmetic: ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)``, ASCII digits only. ``T`` and
``Z`` may be lower case (RFC 3339 5.6 allows it); the space separator its note mentions is not part of
the grammar and is rejected, as are ISO 8601's other forms (week dates, basic format, comma fractions,
missing seconds or offset). Leap seconds (``:60``) are rejected. The epoch milliseconds are computed
with integer arithmetic, so no date in years 1..9999, whatever its offset, can overflow: how old or
how far in the future a reading may be is the decoder's check, not this parser's.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

# Epoch-ms values below this are almost certainly epoch *seconds* sent by mistake (2001-09-09).
_MIN_PLAUSIBLE_MS = 1_000_000_000_000

_RFC3339 = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})"
    r"[Tt](?P<hh>[0-9]{2}):(?P<mm>[0-9]{2}):(?P<ss>[0-9]{2})(?:\.(?P<frac>[0-9]+))?"
    r"(?:[Zz]|(?P<sign>[+-])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))"
)
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_MS_PER_DAY = 86_400_000


class TimestampError(ValueError):
    pass


def to_epoch_ms(value: int | str) -> int:
    """Parse ``value`` into epoch milliseconds, or raise `TimestampError` saying what is wrong."""
    if isinstance(value, int):
        if value < _MIN_PLAUSIBLE_MS:
            raise TimestampError(f"ts {value} is not epoch milliseconds (seconds sent by mistake?)")
        return value
    match = _RFC3339.fullmatch(value)
    shown = repr(value[:64])
    if match is None:
        raise TimestampError(
            f"ts {shown} is neither epoch milliseconds nor RFC 3339 "
            "(YYYY-MM-DDTHH:MM:SS[.frac] then Z or +HH:MM)"
        )
    hours, minutes, seconds = int(match["hh"]), int(match["mm"]), int(match["ss"])
    if hours > 23 or minutes > 59 or seconds > 59:  # clock ranges
        raise TimestampError(f"ts {shown} has a time of day out of range (no leap seconds)")
    try:
        day = date(int(match["y"]), int(match["mo"]), int(match["d"])).toordinal() - _EPOCH_DAY
    except ValueError:
        raise TimestampError(f"ts {shown} is not a calendar date") from None
    offset_min = 0
    if match["sign"]:
        offset_h, offset_m = int(match["oh"]), int(match["om"])
        if offset_h > 23 or offset_m > 59:  # clock ranges
            raise TimestampError(f"ts {shown} has a UTC offset out of range")
        offset_min = (offset_h * 60 + offset_m) * (-1 if match["sign"] == "-" else 1)
    millis = int((match["frac"] or "0")[:3].ljust(3, "0"))
    return day * _MS_PER_DAY + ((hours * 60 + minutes - offset_min) * 60 + seconds) * 1000 + millis


def format_rfc3339(epoch_ms: int) -> str:
    return (
        datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
