"""Timestamps on the wire: epoch milliseconds or RFC 3339 text, normalised to epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime

# Epoch-ms values below this are almost certainly epoch *seconds* sent by mistake (2001-09-09).
_MIN_PLAUSIBLE_MS = 1_000_000_000_000


class TimestampError(ValueError):
    pass


def to_epoch_ms(value: int | str) -> int:
    """Parse ``value`` into epoch milliseconds, or raise `TimestampError` saying what is wrong."""
    if isinstance(value, int):
        if value < _MIN_PLAUSIBLE_MS:
            raise TimestampError(f"ts {value} is not epoch milliseconds (seconds sent by mistake?)")
        return value
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise TimestampError(f"ts {value!r} is neither epoch milliseconds nor RFC 3339") from None
    if parsed.tzinfo is None:
        raise TimestampError(f"ts {value!r} has no UTC offset (RFC 3339 requires one)")
    return int(parsed.astimezone(UTC).timestamp() * 1000)


def format_rfc3339(epoch_ms: int) -> str:
    return (
        datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
