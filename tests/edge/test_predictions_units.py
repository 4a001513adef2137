"""The predictions' pieces on their own: the nightly schedule (store-local wall clock, injected), the
consent gate where rows are written, outcomes once per prediction, and the stock-out alert rule."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from edge.metrics import Counter, IngestMetrics
from edge.predictions.clock import StoreClock, nightly_wait_ms
from edge.predictions.lists import HouseholdLists
from edge.predictions.outcomes import prune_outcomes, record_outcomes
from edge.predictions.scoring import ShelfForecast
from edge.predictions.shelves import stockout_signal
from edge.predictions.tables import (
    PREDICTION_COLUMNS,
    delete_household_predictions,
    queue_rescore,
    write_predictions,
)
from edge.store.db import ReadThread, open_store

DAY_MS = 86_400_000


def ms(text: str) -> int:
    """An ISO time with offset as epoch ms."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_next_nightly_time_in_utc() -> None:
    clock = StoreClock("UTC")
    assert clock.next_at(ms("2026-03-10T02:59:00+00:00"), "03:00") == ms("2026-03-10T03:00:00+00:00")
    # At or after the time: tomorrow.
    assert clock.next_at(ms("2026-03-10T03:00:00+00:00"), "03:00") == ms("2026-03-11T03:00:00+00:00")
    assert clock.next_at(ms("2026-03-10T23:30:00+00:00"), "03:00") == ms("2026-03-11T03:00:00+00:00")


def test_next_nightly_time_follows_the_stores_wall_clock_across_daylight_saving() -> None:
    clock = StoreClock("Europe/Berlin")
    # Winter: 03:00 in Berlin is 02:00 UTC; summer: 01:00 UTC. The night the clocks go forward (29 March
    # 2026, 02:00 -> 03:00) the 03:00 run is only 23 hours after the one before.
    assert clock.next_at(ms("2026-01-15T12:00:00+00:00"), "03:00") == ms("2026-01-16T02:00:00+00:00")
    assert clock.next_at(ms("2026-07-15T12:00:00+00:00"), "03:00") == ms("2026-07-16T01:00:00+00:00")
    before = clock.next_at(ms("2026-03-27T12:00:00+00:00"), "03:00")
    after = clock.next_at(before, "03:00")
    assert (before, after - before) == (
        ms("2026-03-28T02:00:00+00:00"),
        ms("2026-03-29T01:00:00+00:00") - before,
    )
    assert clock.utc_offset_min(ms("2026-01-15T12:00:00+00:00")) == 60
    assert clock.utc_offset_min(ms("2026-07-15T12:00:00+00:00")) == 120


def test_the_nightly_run_waits_for_its_time_unless_the_last_one_was_missed() -> None:
    now = ms("2026-03-10T14:00:00+00:00")
    clock = StoreClock("UTC", now=lambda: now / 1000)
    assert clock.now_ms() == now
    ran_last_night = ms("2026-03-10T03:00:20+00:00")
    assert nightly_wait_ms(clock, now, ran_last_night, "03:00") == ms("2026-03-11T03:00:00+00:00") - now
    assert nightly_wait_ms(clock, now, None, "03:00") == 0  # never ran: now
    assert nightly_wait_ms(clock, now, now - DAY_MS - 1, "03:00") == 0  # the box was off at 03:00
    # Right after the run at 03:00 the next one is a day later, not at once.
    assert (
        nightly_wait_ms(clock, ran_last_night, ran_last_night, "03:00")
        == ms("2026-03-11T03:00:00+00:00") - ran_last_night
    )


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = open_store(tmp_path / "store.db")
    yield c
    c.close()


def consent(conn: sqlite3.Connection, household: str, granted: bool) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO consents (household, purpose, granted, updated_ms) VALUES (?, 'personalisation', ?, 0)",
        (household, int(granted)),
    )


def row(
    household: str, category: str, scored_ms: int, origin_day: int, expected: float = 3.0
) -> tuple[object, ...]:
    values: dict[str, object] = {
        "household": household, "category": category, "purchases": 4, "p1": 0.1, "p2": 0.2, "p7": 0.6,
        "p14": 0.9, "p_horizon": 0.99, "expected_days": expected, "days_p10": 1.0, "days_p50": expected,
        "days_p90": 9.0, "confidence": 0.7, "basket_probability": 0.4, "urgency": "upcoming",
        "reason": f"you buy {category} about every 4 days", "list_rank": 1, "model_version": "np-1",
        "basket_model_version": "nb-1", "scored_ms": scored_ms, "origin_day": origin_day, "utc_offset_min": 60,
        "experiment": None, "arm": None, "past_gap": 0,
    }  # fmt: skip
    return tuple(values[c] for c in PREDICTION_COLUMNS)


def test_rows_are_written_only_for_households_that_still_consent(conn: sqlite3.Connection) -> None:
    consent(conn, "hh_a", True)
    consent(conn, "hh_b", True)
    conn.execute("INSERT INTO rescore_queue VALUES ('hh_a', 100), ('hh_b', 100)")
    # hh_b withdrew while it was being scored: nothing of it is written, its queue entry goes too.
    consent(conn, "hh_b", False)
    written = write_predictions(
        conn,
        ["hh_a", "hh_b", "hh_c"],
        [row("hh_a", "milk", 1, 1), row("hh_b", "milk", 1, 1)],
        {"hh_a": 100, "hh_b": 100},
    )
    assert written == (1, 1)
    assert conn.execute("SELECT household FROM predictions").fetchall() == [("hh_a",)]
    assert conn.execute("SELECT count(*) FROM rescore_queue").fetchone() == (0,)


def test_a_queue_entry_newer_than_the_scoring_survives(conn: sqlite3.Connection) -> None:
    consent(conn, "hh_a", True)
    assert queue_rescore(conn, "hh_a", 200)  # a purchase arrived after the snapshot the scoring saw
    write_predictions(conn, ["hh_a"], [row("hh_a", "milk", 1, 1)], {"hh_a": 100})
    assert conn.execute("SELECT queued_ms FROM rescore_queue").fetchall() == [(200,)]


def test_only_consenting_households_are_queued(conn: sqlite3.Connection) -> None:
    consent(conn, "hh_a", True)
    consent(conn, "hh_b", False)
    assert queue_rescore(conn, "hh_a", 10)
    assert not queue_rescore(conn, "hh_b", 10)
    assert not queue_rescore(conn, "hh_never_asked", 10)
    assert queue_rescore(conn, "hh_a", 5)  # an older mark never moves the entry back
    assert conn.execute("SELECT household, queued_ms FROM rescore_queue").fetchall() == [("hh_a", 10)]


def test_outcomes_are_recorded_once_per_prediction(conn: sqlite3.Connection) -> None:
    consent(conn, "hh_a", True)
    scored = ms("2026-03-10T03:00:00+00:00")
    origin = (scored + 60 * 60_000) // DAY_MS  # store-local day (UTC+1)
    write_predictions(
        conn, ["hh_a"], [row("hh_a", "milk", scored, origin), row("hh_a", "eggs", scored, origin)], {}
    )
    bought = ms("2026-03-13T23:30:00+00:00")  # 00:30 on the 14th in the store: 4 days after the origin
    entries = record_outcomes(conn, "hh_a", {"milk", "bread"}, bought, bought + 5)
    assert [(e.kind, e.entity) for e in entries] == [
        ("list_outcome", f"hh_a:{bought}"),
        ("prediction_outcome", "hh_a:milk"),
    ]
    assert conn.execute(
        "SELECT category, expected_days, p7, actual_days, purchased_ms, recorded_ms FROM prediction_outcomes"
    ).fetchall() == [("milk", 3.0, 0.6, 4, bought, bought + 5)]
    # The trip against the list: 2 categories bought, 1 of them (milk) among the 2 listed.
    assert conn.execute("SELECT categories, on_list, listed FROM list_outcomes").fetchall() == [(2, 1, 2)]
    # The same prediction answered again (a second basket before the rescore): only the trip is new.
    again = record_outcomes(conn, "hh_a", {"milk"}, bought + 60_000, bought + 60_005)
    assert [e.kind for e in again] == ["list_outcome"]
    # A basket from before the prediction (a late till) is not its outcome.
    assert record_outcomes(conn, "hh_a", {"eggs"}, scored - 1, scored) == []
    assert conn.execute("SELECT count(*) FROM prediction_outcomes").fetchone() == (1,)
    # Retention: outcomes recorded before the cut go (central has them through the outbox).
    assert prune_outcomes(conn, bought + 5) == 0
    assert prune_outcomes(conn, bought + 6) == 2  # the prediction's outcome and the first trip
    assert (
        record_outcomes(conn, "hh_a", {"milk"}, bought + 120_000, bought + 120_005) != []
    )  # re-recorded: the row was gone
    # Consent withdrawn: predictions and queue go, outcomes stay; erasure takes the outcomes too.
    assert delete_household_predictions(conn, "hh_a") == 2
    assert conn.execute("SELECT count(*) FROM prediction_outcomes").fetchone() == (1,)
    assert delete_household_predictions(conn, "hh_a", outcomes=True) == 3  # an outcome, two trips
    assert conn.execute("SELECT count(*) FROM prediction_outcomes").fetchone() == (0,)


@pytest.mark.parametrize(
    ("items", "minutes", "active"),
    [
        (5, 20.0, True),  # within the warning
        (5, 30.0, True),
        (5, 45.0, None),  # between the warning and twice it: no change (hysteresis)
        (5, 61.0, False),  # past twice the warning: restocked or slowed down
        (5, None, False),  # not empty within 24 h
        (0, 0.0, False),  # empty: the empty-shelf alert speaks
    ],
)
def test_stockout_predicted_rule(items: int, minutes: float | None, active: bool | None) -> None:
    now = ms("2026-03-10T12:00:00+00:00")
    empty_at = None if minutes is None else now + int(minutes * 60_000)
    signal = stockout_signal(ShelfForecast("A1-1", items, minutes, None, empty_at), "Bananas", 30.0, "sd-1")
    assert (None if signal is None else signal.active) is active
    if signal is not None and signal.active:
        assert (signal.kind, signal.subject) == ("stockout_predicted", "A1-1")
        assert signal.detail["minutes_to_empty"] == minutes
        assert "Bananas" in signal.message


def test_a_fresh_store_gets_the_prediction_tables(conn: sqlite3.Connection) -> None:
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "predictions",
        "prediction_outcomes",
        "rescore_queue",
        "shelf_forecasts",
        "prediction_runs",
    } <= tables


async def test_the_served_list_shows_days_left_that_agree_with_the_reason(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    """Past its usual gap an item is due now (the model expects it this week) or has no number (a lapsed
    habit); coming up is sorted soonest first (issue #17)."""
    consent(conn, "hh_a", True)
    now = ms("2026-03-10T12:00:00+00:00")
    today = now // DAY_MS

    def item(
        category: str, expected: float, p7: float, past: int, urgency: str, rank: int
    ) -> tuple[object, ...]:
        values = dict(zip(PREDICTION_COLUMNS, row("hh_a", category, now, today, expected), strict=True))
        values |= {"p7": p7, "past_gap": past, "urgency": urgency, "list_rank": rank, "utc_offset_min": 0}
        return tuple(values[c] for c in PREDICTION_COLUMNS)

    rows = [
        item("soft-drinks", 2.0, 0.8, 1, "upcoming", 1),  # every 5 days, 12 days ago: due now
        item("soup", 12.0, 0.2, 1, "upcoming", 2),  # every 7 days, 33 days ago: lapsed, no number
        item("rice", 4.0, 0.6, 0, "upcoming", 3),
        item("eggs", 1.5, 0.9, 0, "upcoming", 4),
    ]
    write_predictions(conn, ["hh_a"], rows, {})
    conn.commit()
    reads = ReadThread(tmp_path / "store.db", "test-lists")

    async def never(_household: str) -> bool:
        return False

    lists = HouseholdLists(reads, never, IngestMetrics().registry.register(Counter("t", "t", ("kind",))),
                           StoreClock("UTC", now=lambda: now / 1000), 10, lambda: "np")  # fmt: skip
    try:
        shown = await lists.shopping_list("hh_a", now)
    finally:
        await reads.close()
    assert [(i.category, i.days_left) for i in shown.upcoming] == [
        ("soft-drinks", 0.0),
        ("eggs", 1.5),
        ("rice", 4.0),
        ("soup", None),
    ]
