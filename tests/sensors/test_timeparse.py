from __future__ import annotations

import pytest

from sensors.timeparse import TimestampError, format_rfc3339, to_epoch_ms


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_795_548_835_752, 1_795_548_835_752),
        ("2026-11-24T10:00:00Z", 1_795_514_400_000),
        ("2026-11-24T11:00:00.250+01:00", 1_795_514_400_250),
        ("2026-11-24T10:00:00z", 1_795_514_400_000),
        ("2026-11-24t10:00:00.123456789-00:00", 1_795_514_400_123),
        # Integer arithmetic: the ends of the calendar with any offset parse, nothing overflows (the age
        # check is the decoder's).
        ("0001-01-01T00:00:00+00:01", -62_135_596_860_000),
        ("9999-12-31T23:59:59-00:01", 253_402_300_859_000),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_accepts_epoch_ms_and_rfc3339(value: int | str, expected: int) -> None:
    assert to_epoch_ms(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        1_795_548_835,
        "yesterday",
        "2026-11-24T10:00:00",
        "",
        "2026-11-24 10:00:00Z",
        "2026-W48-2T10:00:00Z",
        "20261124T100000Z",
        "2026-11-24T10:00Z",
        "2026-11-24T10:00:00,5Z",
        "0000-01-01T00:00:00Z",
        "2026-11-24T10:00:00Z" + "0" * 100_000,
    ],
)
def test_rejects_with_a_reason(value: int | str) -> None:
    with pytest.raises(TimestampError, match="ts"):
        to_epoch_ms(value)


def test_format_roundtrip() -> None:
    assert to_epoch_ms(format_rfc3339(1_795_514_400_250)) == 1_795_514_400_250
