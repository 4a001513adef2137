"""Serving the models in a real daemon: a real broker, real SQLite seeded with simulated weeks of
loyalty purchases, real onnxruntime on the shipped models. What a household gets depends on its
personalisation consent; a purchase records the outcome of the prediction it answers and gets the
household rescored; shelves are forecast and a staff alert opens before a predicted stock-out."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
import msgspec
import pytest

from edge.config import load_config
from edge.demo.broker import MosquittoBroker
from edge.demo.seed import SeedReport, store_pseudonymiser
from edge.demo.service import seed_demo_history
from edge.predictions.lists import GENERIC_REASON
from edge.predictions.service import PredictionService
from models import load_models
from tests.conftest import ajson, run_daemon, write_config

pytestmark = pytest.mark.integration
DAY_MS = 86_400_000
MODELS = load_models()


def query(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def seeded_store(tmp_path: Path, broker: MosquittoBroker) -> tuple[Path, SeedReport]:
    models = {"rescore_interval_s": 0.2, "shelf_forecast_interval_s": 3600.0}
    config = write_config(tmp_path, broker, store={"timezone": "UTC"}, models=models)
    report = seed_demo_history(load_config(config), households=60, weeks=10, seed=3)
    return config, report


async def grant(service_writer: Any, household: str) -> None:
    await service_writer.run_job(
        lambda c: c.execute(
            "INSERT INTO consents (household, purpose, granted, updated_ms) VALUES (?, 'personalisation', 1, ?)"
            " ON CONFLICT (household, purpose) DO UPDATE SET granted = 1",
            (household, int(time.time() * 1000)),
        )
    )


def service(running: Any) -> PredictionService:
    svc = running.daemon.predictions
    assert isinstance(svc, PredictionService)
    return svc


async def test_consent_decides_between_a_personalised_list_and_the_generic_one(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config, seeded = seeded_store(tmp_path, broker)
    pseudonyms = store_pseudonymiser(load_config(config))
    yes, no = (pseudonyms.household_id(card) for card in seeded.cards[:2])
    db = tmp_path / "store.db"
    async with run_daemon(config) as running:
        svc = service(running)
        await grant(running.daemon.writer, yes)

        personal = await svc.shopping_list(yes)
        assert personal.personalised
        assert personal.model_version == MODELS.next_basket.card.version
        items = personal.urgent + personal.upcoming + personal.usual
        assert 0 < len(items) <= 10
        bought = {
            c
            for (c,) in query(
                db,
                "SELECT DISTINCT i.category FROM purchases p JOIN purchase_items i ON i.purchase_id = p.id"
                " WHERE p.household = ?",
                yes,
            )
        }
        assert {i.category for i in items} <= bought  # only its own categories, never someone else's
        assert all(i.category in i.reason for i in items)
        # Urgency buckets follow the cached probabilities (scored on demand, then cached).
        cached = {
            c: (p2, p7, urgency)
            for c, p2, p7, urgency in query(
                db, "SELECT category, p2, p7, urgency FROM predictions WHERE household = ?", yes
            )
        }
        for item in personal.urgent:
            assert cached[item.category][0] >= 0.5
        for item in personal.upcoming:
            assert cached[item.category][0] < 0.5 <= cached[item.category][1]
        # The non-consenting household: the store's most bought categories of the last 7 days.
        generic = await svc.shopping_list(no)
        assert not generic.personalised
        assert generic.model_version is None
        assert generic.urgent == []
        assert generic.upcoming == []
        week = query(
            db,
            "SELECT i.category, count(DISTINCT p.id) AS n FROM purchases p JOIN purchase_items i"
            " ON i.purchase_id = p.id WHERE p.ts_ms >= ? GROUP BY i.category ORDER BY n DESC, i.category LIMIT 10",
            int(time.time() * 1000) - 7 * DAY_MS,
        )
        assert [i.category for i in generic.usual] == [c for c, _ in week]
        assert {i.reason for i in generic.usual} == {GENERIC_REASON}
        assert all(i.days_left is None for i in generic.usual)
        assert await svc.predictions(no) is None

        report = await svc.full_rescore()
        assert report.households == 1
        households = {h for (h,) in query(db, "SELECT DISTINCT household FROM predictions")}
        assert households == {yes}  # no profile for a household without consent, ever
        forecast = await svc.predictions(yes)
        assert forecast is not None
        assert forecast.predictions
        for p in forecast.predictions:
            assert p.days_p10 <= p.days_p50 <= p.days_p90
            assert p.days_p50 == p.expected_days
            assert (
                0
                <= p.p_within_days["1"]
                <= p.p_within_days["2"]
                <= p.p_within_days["7"]
                <= p.p_within_days["14"]
                <= 1
            )

        # Withdrawing consent: the lead's handler deletes through `forget`; the list goes generic.
        await running.daemon.writer.run_job(
            lambda c: c.execute("UPDATE consents SET granted = 0 WHERE household = ?", (yes,))
        )
        assert await svc.forget(yes) > 0
        assert query(db, "SELECT count(*) FROM predictions WHERE household = ?", yes) == [(0,)]
        assert not (await svc.shopping_list(yes)).personalised


async def till(port: int, seq: int, ts_ms: int, loyalty: str, sku: str, qty: int) -> None:
    """One basket of one line at 1.50 from lane 1."""
    async with aiomqtt.Client("127.0.0.1", port) as device:
        items = [{"sku": sku, "qty": qty, "unit_price": 1.5}]
        body = {"ts": ts_ms, "seq": seq, "basket_id": f"t-{seq}", "items": items, "loyalty_id": loyalty,
                "total": 1.5 * qty}  # fmt: skip
        await device.publish("store/demo/pos/1/transaction", json.dumps(body), qos=1)


async def test_a_purchase_records_the_outcome_and_rescores_the_household(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config, seeded = seeded_store(tmp_path, broker)
    pseudonyms = store_pseudonymiser(load_config(config))
    card, other = seeded.cards[0], seeded.cards[1]
    yes, no = pseudonyms.household_id(card), pseudonyms.household_id(other)
    db = tmp_path / "store.db"
    async with run_daemon(config) as running:
        svc = service(running)
        await grant(running.daemon.writer, yes)
        await svc.full_rescore()
        before = {
            c: (scored, origin, expected, p7)
            for c, scored, origin, expected, p7 in query(
                db,
                "SELECT category, scored_ms, origin_day, expected_days, p7 FROM predictions WHERE household = ?",
                yes,
            )
        }
        sku = {s.category: s.sku for s in running.daemon.planogram.shelves.values()}
        category = next(c for c in sorted(before) if before[c][2] is not None)
        now = int(time.time() * 1000)
        await till(broker.port, 1, now, card, sku[category], 2)
        await wait_for(lambda: query(db, "SELECT count(*) FROM prediction_outcomes") == [(1,)])
        (outcome,) = query(
            db,
            "SELECT household, category, scored_ms, expected_days, p7, actual_days, purchased_ms, model_version"
            " FROM prediction_outcomes",
        )
        scored, origin, expected, p7 = before[category]
        assert outcome == (
            yes, category, scored, expected, p7, now // DAY_MS - origin, now, MODELS.next_purchase.card.version
        )  # fmt: skip
        (body,) = query(db, "SELECT body FROM outbox WHERE kind = 'prediction_outcome'")
        assert json.loads(body[0])["actual_days"] == now // DAY_MS - origin
        # Rescored by the on-change loop: today's purchase counts, so the forecast now starts tomorrow.
        await wait_for(
            lambda: (
                query(db, "SELECT min(scored_ms) FROM predictions WHERE household = ?", yes)[0][0] > scored
            )
        )
        await wait_for(lambda: query(db, "SELECT count(*) FROM rescore_queue") == [(0,)])
        origins = {
            o for (o,) in query(db, "SELECT DISTINCT origin_day FROM predictions WHERE household = ?", yes)
        }
        assert origins == {now // DAY_MS + 1}
        n_outcomes = query(db, "SELECT count(*) FROM prediction_outcomes")[0][0]
        # A household without consent is never queued and has no outcomes.
        await till(broker.port, 2, now + 1000, other, sku[category], 1)
        await wait_for(lambda: query(db, "SELECT count(*) FROM purchases WHERE basket_id = 't-2'") == [(1,)])
        assert query(db, "SELECT count(*) FROM rescore_queue WHERE household = ?", no) == [(0,)]
        assert query(db, "SELECT count(*) FROM prediction_outcomes WHERE household = ?", no) == [(0,)]
        assert query(db, "SELECT count(*) FROM predictions WHERE household = ?", no) == [(0,)]
        assert query(db, "SELECT count(*) FROM prediction_outcomes")[0][0] == n_outcomes


async def publish_levels(port: int, shelf: str, unit: float, levels: list[tuple[int, int]]) -> None:
    """(ts_ms, items) levels, each held still for a second (three readings 0.5 s apart)."""
    async with aiomqtt.Client("127.0.0.1", port) as device:
        seq = 0
        for ts, items in levels:
            for k in range(3):
                seq += 1
                await device.publish(
                    f"store/demo/shelf/{shelf}/weight",
                    json.dumps({"ts": ts + 500 * k, "seq": seq, "grams": items * unit}),
                    qos=1,
                )


def late_morning_zone(now_s: float) -> str:
    """A fixed-offset IANA zone in which ``now_s`` falls between 11:00 and 12:00 local time."""
    offset = (11 - time.gmtime(now_s).tm_hour + 12) % 24 - 12  # -12..11 hours east of UTC
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # the Etc/ zones' signs are inverted


def test_the_late_morning_zone_is_late_morning_at_every_hour() -> None:
    for hour in range(24):
        now_s = 1_790_000_000 - 1_790_000_000 % 86_400 + hour * 3600 + 1800
        local = dt.datetime.fromtimestamp(now_s, ZoneInfo(late_morning_zone(now_s)))
        assert local.hour == 11, (hour, late_morning_zone(now_s))


async def test_shelf_forecast_opens_and_clears_the_stockout_predicted_alert(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    # Picks a week ago and yesterday at the same time of day, and now: one item every 3 minutes. The
    # warning is wide, the hysteresis clears past twice that. The model expects quiet evenings, so the
    # store's clock is set to late morning whenever the test runs (a fixed-offset zone).
    warning_min = 240.0
    config = write_config(
        tmp_path,
        broker,
        store={"timezone": late_morning_zone(time.time())},
        models={"shelf_forecast_interval_s": 3600.0},
        thresholds={"max_clock_skew_s": 8 * 86_400.0, "stockout_warning_min": warning_min},
    )
    now = int(time.time() * 1000)
    minute = 60_000
    levels: list[tuple[int, int]] = []
    for back in (7 * DAY_MS, DAY_MS):
        start = now - back - 60 * minute
        levels += [(start + 3 * minute * k, 40 - k) for k in range(40)]
    levels += [(now - 61 * minute + 3 * minute * k, 23 - k) for k in range(21)]  # 23 -> 3 in the last hour
    db = tmp_path / "store.db"
    async with run_daemon(config) as running:
        svc = service(running)
        events = running.daemon.bus.subscribe()
        await publish_levels(broker.port, "A5-3", 110.0, levels)
        await wait_for(lambda: query(db, "SELECT items FROM shelf_state WHERE shelf = 'A5-3'") == [(3,)])
        forecasts = {f.shelf: f for f in await svc.forecast_shelves_once()}
        soon = forecasts["A5-3"]
        assert soon.items == 3
        assert soon.minutes_to_empty is not None
        assert soon.minutes_to_empty <= warning_min
        view = await svc.shelf_forecast("A5-3")
        assert view is not None
        assert (view.items, view.minutes_to_empty, view.model_version) == (
            3, soon.minutes_to_empty, MODELS.shelf_depletion.card.version
        )  # fmt: skip
        assert view.empty_at_ms is not None
        assert abs(view.empty_at_ms - (view.scored_ms + soon.minutes_to_empty * 60_000)) <= 6_000  # 0.1 min
        assert await svc.shelf_forecast("no-such-shelf") is None
        active = await ajson(f"{running.url}/api/v1/alerts?state=active")
        predicted = [a for a in active if a["kind"] == "stockout_predicted"]
        assert [a["subject"] for a in predicted] == ["A5-3"]
        assert predicted[0]["detail"]["minutes_to_empty"] == soon.minutes_to_empty

        async def published(state: str) -> None:
            while True:
                event = await events.get()
                if event.kind == "stockout_predicted" and event.state == state:
                    assert event.subject == "A5-3"
                    return

        await asyncio.wait_for(published("open"), 5)
        # Restocked to 40: the forecast moves past twice the warning and the alert resolves.
        await publish_levels(broker.port, "A5-3", 110.0, [(int(time.time() * 1000), 40)])
        await wait_for(lambda: query(db, "SELECT items FROM shelf_state WHERE shelf = 'A5-3'") == [(40,)])
        after = {f.shelf: f for f in await svc.forecast_shelves_once()}["A5-3"]
        assert after.minutes_to_empty is None or after.minutes_to_empty > 2 * warning_min
        await asyncio.wait_for(published("resolved"), 5)
        active = await ajson(f"{running.url}/api/v1/alerts?state=active")
        assert not [a for a in active if a["kind"] == "stockout_predicted"]


async def test_a_full_rescore_in_many_steps_writes_what_one_step_writes(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    # The full run pipelines steps (read next, score this, write previous): with 1 household per step
    # it must cache exactly what a single step caches.
    config, seeded = seeded_store(tmp_path, broker)
    pseudonyms = store_pseudonymiser(load_config(config))
    households = [pseudonyms.household_id(card) for card in seeded.cards]
    db = tmp_path / "store.db"
    async with run_daemon(config) as running:
        svc = service(running)
        # Both runs score at the same instant (a store-local midnight between them would move the days).
        instant = time.time()
        svc.clock.now = lambda: instant
        for household in households:
            await grant(running.daemon.writer, household)
        one_step = await svc.full_rescore()
        snapshot = query(db, "SELECT household, category, p7, expected_days FROM predictions ORDER BY 1, 2")
        svc._settings = msgspec.structs.replace(svc._settings, batch_households=1)
        many_steps = await svc.full_rescore()
        assert (many_steps.households, many_steps.rows) == (one_step.households, one_step.rows)
        assert one_step.households == len(households) > 1
        assert (
            query(db, "SELECT household, category, p7, expected_days FROM predictions ORDER BY 1, 2")
            == snapshot
        )
