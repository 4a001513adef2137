"""The kiosk's pure parts: idle tracking, scanner framing, the client's error mapping (the route map's:
tests/kiosk/test_kiosk_route_map.py)."""

from __future__ import annotations

from datetime import datetime

import pytest

from kiosk.client import _api_error
from kiosk.errors import ApiError, NotAuthorizedError
from kiosk.idle import MIN_COUNTDOWN_S, IdlePhase, IdleTracker
from kiosk.scanner import MAX_CODE_BYTES, split_codes
from kiosk.screens.staff import alert_row
from kiosk.widgets import days_left_text
from tests.kiosk.kiosk_testkit import ALERT, FakeClock


def test_idle_tracker_warns_then_expires_and_input_resets_it() -> None:
    clock = FakeClock()
    idle = IdleTracker(60, 30, clock)
    assert idle.phase() is IdlePhase.ACTIVE
    clock.advance(59.9)
    assert idle.phase() is IdlePhase.ACTIVE
    clock.advance(0.2)
    assert idle.phase() is IdlePhase.WARNING
    assert idle.seconds_left() == pytest.approx(29.9)
    idle.touch()
    assert idle.phase() is IdlePhase.ACTIVE
    clock.advance(90.0)
    assert idle.phase() is IdlePhase.EXPIRED
    assert idle.seconds_left() == 0


def test_countdown_is_never_shorter_than_wcag_minimum() -> None:
    assert IdleTracker(5, 3, FakeClock()).countdown_s == MIN_COUNTDOWN_S
    idle = IdleTracker(5, 45, FakeClock())
    idle.configure(10, 1)
    assert (idle.idle_s, idle.countdown_s) == (10, MIN_COUNTDOWN_S)
    with pytest.raises(ValueError, match="idle_s"):
        IdleTracker(0, 30)


@pytest.mark.parametrize(
    ("chunks", "codes"),
    [
        ([b"4000123412341234\r"], ["4000123412341234"]),
        ([b"4000\r\n", b"5000\r\n"], ["4000", "5000"]),
        ([b"40001", b"23\r"], ["4000123"]),
        ([b"abc\n\r\n\r"], ["abc"]),
        ([b"  12 34 \r"], ["12 34"]),
        ([b"\x00\x1b12\x7f\r"], ["12"]),
        ([b"9" * (MAX_CODE_BYTES + 5), b"\r42\r"], ["42"]),
    ],
)
def test_scanner_lines_split_on_cr_or_lf(chunks: list[bytes], codes: list[str]) -> None:
    buffer = bytearray()
    found: list[str] = []
    for chunk in chunks:
        buffer += chunk
        found += split_codes(buffer)
    assert found == codes


def test_unfinished_code_stays_in_the_buffer() -> None:
    buffer = bytearray(b"12\r34")
    assert split_codes(buffer) == ["12"]
    assert buffer == b"34"


def test_api_errors_are_typed() -> None:
    refused = _api_error(403, b'{"error": "consent: personalisation not given"}')
    assert isinstance(refused, NotAuthorizedError)
    assert refused.message == "consent: personalisation not given"
    other = _api_error(502, b"<html>bad gateway</html>")
    assert type(other) is ApiError
    assert other.status == 502
    assert "bad gateway" in other.message


def test_words_for_days_left_and_alerts() -> None:
    assert days_left_text(None) == ""
    assert days_left_text(0.2) == "needed now"
    assert days_left_text(1.2) == "about 1 day left"
    assert days_left_text(4.6) == "about 5 days left"
    from msgspec.structs import replace

    assert alert_row(ALERT) == ("CRITICAL", "Shelf empty", "A3-2", "OPEN", "shelf A3-2 is empty")
    empty_at = datetime(2026, 11, 24, 17, 45).astimezone()
    soon = replace(
        ALERT,
        kind="stockout_predicted",
        severity="warning",
        state="acked",
        message="A3-2 (rice) forecast empty in about 42 min (3 left)",
        detail={"minutes_to_empty": 42.0, "empty_at_ms": int(empty_at.timestamp() * 1000)},
    )
    assert alert_row(soon) == (
        "WARNING",
        "Empty soon (forecast)",
        "A3-2",
        "ACKED",
        "A3-2 (rice) forecast empty in about 42 min (3 left) - empty by 17:45",
    )
