"""Customer scores, insights and segments on a real daemon: real SQLite seeded with simulated weeks of
loyalty purchases, a real broker, the shipped customer models, HTTP over loopback. Analytics consent
decides everything; withdrawing it deletes scores, segment and insights at once; every insights read is
in the access log; no response names an inference the product declines."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from edge.config import load_config
from edge.customers.privacy import CardCheck
from edge.customers.scores import load_customer_models
from edge.demo.broker import MosquittoBroker
from edge.demo.seed import SeedReport, store_pseudonymiser
from edge.demo.service import seed_demo_history
from edge.predictions.service import PredictionService
from models.cards import CUSTOMERS_DIR
from models.inference import TRAINED_DIR
from tests.conftest import PSEUDONYM_KEY, STAFF_TOKEN, run_daemon, write_config
from tests.edge.test_customer_insights_document import confidences, declined_inferences
from tests.edge.test_customers_api import KIOSK_TOKEN, buy, call, wait_for

pytestmark = pytest.mark.integration
SHIPPED = load_customer_models(TRAINED_DIR)
CARDS = CardCheck(PSEUDONYM_KEY.encode())


def rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def seeded(tmp_path: Path, broker: MosquittoBroker, **models: object) -> tuple[Path, SeedReport]:
    config = write_config(
        tmp_path,
        broker,
        store={"timezone": "UTC"},
        http={"kiosk_token": KIOSK_TOKEN},
        models={"shelf_forecast_interval_s": 3600.0, **models},
    )
    return config, seed_demo_history(load_config(config), households=60, weeks=10, seed=3)


async def grant_analytics(writer: Any, households: list[str]) -> None:
    now = int(time.time() * 1000)
    await writer.run_job(
        lambda c: c.executemany(
            "INSERT INTO consents (household, purpose, granted, updated_ms) VALUES (?, 'analytics', 1, ?)",
            [(h, now) for h in households],
        )
    )


def households_of(db: Path) -> list[str]:
    return [h for (h,) in rows(db, "SELECT id FROM households ORDER BY id")]


async def test_nightly_scores_and_the_insights_that_explain_them(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    assert SHIPPED is not None
    assert SHIPPED.segments is not None
    config, report = seeded(tmp_path, broker, clv_horizon_days=180)
    db = tmp_path / "store.db"
    cards = report.cards
    pseudonyms = store_pseudonymiser(load_config(config))
    me = pseudonyms.household_id(cards[0])
    everyone = households_of(db)
    refused = next(h for h in everyone if h != me)
    consenting = [h for h in everyone if h != refused]
    responses: list[Any] = []
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1"
        await grant_analytics(d.daemon.writer, consenting)
        predictions = d.daemon.predictions
        assert isinstance(predictions, PredictionService)
        await predictions.full_rescore()  # the nightly run; customer scores follow it (the hook)

        scored = {r[0]: r for r in rows(db, "SELECT * FROM customer_scores")}
        assert set(scored) == set(consenting)  # every consenting household bought: all scored, no one else
        columns = [c[1] for c in rows(db, "PRAGMA table_info(customer_scores)")]
        segment_ids = {s.id for s in SHIPPED.segments.segments}
        for row in scored.values():
            value = dict(zip(columns, row, strict=True))
            assert 0.0 <= value["p_alive"] <= 1.0
            assert 0.0 <= value["p_churn"] <= 1.0
            assert value["churn_band"] in {"active", "watch", "at_risk", "lapsed"}
            assert value["churn_reason"]
            assert value["clv"] >= value["expected_spend_90d"] * 0.5 >= 0.0  # 180 days hold at least 90
            assert value["clv_horizon_days"] == 180
            assert value["segment"] in segment_ids
            assert value["model_version"] == SHIPPED.version

        # A shopper's own session (a scanned card) reads its own insights, never another's.
        status, opened = await call(
            "POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": CARDS.barcode(cards[0])}
        )
        assert status == 201, opened
        assert opened["customer"] == me
        responses.append({k: v for k, v in opened.items() if k != "token"})  # random text: not walked
        token = opened["token"]
        status, mine = await call("GET", f"{api}/customers/{me}/insights", token)
        assert status == 200, mine
        responses.append(mine)
        assert (await call("GET", f"{api}/customers/{consenting[-1]}/insights", token))[0] == 403
        assert mine["customer"] == me
        assert mine["lifetime_value"]["clv"] == pytest.approx(
            dict(zip(columns, scored[me], strict=True))["clv"]
        )
        assert mine["segment"]["id"] == dict(zip(columns, scored[me], strict=True))["segment"]
        assert mine["segment"]["name"]
        assert [n["inference"] for n in mine["not_inferred"]] == [
            "personality", "emotional_state", "health_conditions", "income", "family_composition"
        ]  # fmt: skip
        assert all(0.0 <= c <= 1.0 and r for c, r in confidences(mine))
        bought = {c for (c,) in rows(
            db, "SELECT DISTINCT i.category FROM purchases p JOIN purchase_items i ON i.purchase_id = p.id"
            " WHERE p.household = ?", me,
        )}  # fmt: skip
        patterns = mine["consumption"]["categories"]
        assert patterns
        assert {p["category"] for p in patterns} <= bought
        assert not {o["category"] for o in mine["opportunities"]["categories"]} & bought
        # The average interval is the mean gap between the distinct days it bought the category.
        top = patterns[0]
        days = sorted({ts // 86_400_000 for (ts,) in rows(
            db, "SELECT p.ts_ms FROM purchases p JOIN purchase_items i ON i.purchase_id = p.id"
            " WHERE p.household = ? AND i.category = ?", me, top["category"],
        )})  # fmt: skip
        assert top["purchases"] == len(days)
        assert top["average_interval_days"] == pytest.approx(
            (days[-1] - days[0]) / (len(days) - 1), abs=0.051
        )
        # Cached: the same document again; a new purchase makes it stale.
        assert (await call("GET", f"{api}/customers/{me}/insights", STAFF_TOKEN))[1] == mine
        assert rows(db, "SELECT count(*) FROM customer_insights WHERE household = ?", me) == [(1,)]
        await buy(broker, cards[0], "B-new-1", 900_001, ["1001"])
        await wait_for(
            lambda: rows(db, "SELECT count(*) FROM customer_insights WHERE household = ?", me) == [(0,)]
        )
        before = rows(db, "SELECT scored_ms FROM customer_scores WHERE household = ?", me)[0][0]
        status, analyzed = await call("POST", f"{api}/customers/{me}/analyze", token)
        assert status == 200, analyzed
        responses.append(analyzed)
        assert rows(db, "SELECT scored_ms FROM customer_scores WHERE household = ?", me)[0][0] > before
        assert analyzed["computed_ms"] > mine["computed_ms"]

        # No analytics consent: nothing computed, nothing kept.
        status, body = await call("GET", f"{api}/customers/{refused}/insights", STAFF_TOKEN)
        assert status == 403
        assert "analytics" in body["error"]
        assert (await call("POST", f"{api}/customers/{refused}/analyze", STAFF_TOKEN))[0] == 403
        assert rows(db, "SELECT count(*) FROM customer_scores WHERE household = ?", refused) == [(0,)]
        assert rows(db, "SELECT count(*) FROM customer_insights WHERE household = ?", refused) == [(0,)]

        # Every read of insights is in the access log, by whom.
        log = rows(db, "SELECT route, role FROM access_log WHERE household = ? AND route LIKE '%insights%'"
                   " OR household = ? AND route LIKE '%analyze%' ORDER BY id", me, me)  # fmt: skip
        assert log == [
            ("GET /api/v1/customers/{id}/insights", "session"),
            ("GET /api/v1/customers/{id}/insights", "staff"),
            ("POST /api/v1/customers/{id}/analyze", "session"),
        ]

        # Segments, for staff only: sizes as in the store, small ones suppressed.
        assert (await call("GET", f"{api}/analytics/customer-segments", token))[0] == 403
        status, segments = await call("GET", f"{api}/analytics/customer-segments", STAFF_TOKEN)
        assert status == 200, segments
        responses.append(segments)
        counts = dict(rows(db, "SELECT segment, count(*) FROM customer_scores GROUP BY segment"))
        assert [s["id"] for s in segments["segments"]] == [s.id for s in SHIPPED.segments.segments]
        for s in segments["segments"]:
            n = counts.get(s["id"], 0)
            assert s["suppressed"] == (n < 10)
            assert s["households"] == (None if n < 10 else n)
            assert (s["mean_clv"] is None) == (n < 10)
        assert any(s["suppressed"] for s in segments["segments"]) == (segments["households_scored"] is None)

        # Every other customer route's answer, for the declined-inference walk below.
        for method, path in (
            ("GET", f"customers/{me}/consent"),
            ("GET", f"customers/{me}/predictions"),
            ("GET", f"customers/{me}/offers"),
            ("GET", f"recommendations/shopping-list/{me}"),
            ("GET", f"in-store/{me}/personalization"),
            ("GET", "analytics/interactions"),
        ):
            status, body = await call(method, f"{api}/{path}", STAFF_TOKEN)
            assert status in (200, 403), (path, body)
            responses.append(body)
    assert declined_inferences(responses) == []


async def test_withdrawing_analytics_deletes_scores_segment_and_insights_at_once(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config, report = seeded(tmp_path, broker)
    db = tmp_path / "store.db"
    me = store_pseudonymiser(load_config(config)).household_id(report.cards[0])
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1"
        consent = {"personalisation": True, "analytics": True}
        assert (await call("PUT", f"{api}/customers/{me}/consent", STAFF_TOKEN, consent))[0] == 200
        status, document = await call("GET", f"{api}/customers/{me}/insights", STAFF_TOKEN)
        assert status == 200, document  # scored on demand: no nightly run yet
        assert document["segment"]["id"] is not None
        assert rows(
            db, "SELECT count(*) FROM customer_scores WHERE household = ? AND segment IS NOT NULL", me
        ) == [(1,)]
        assert rows(db, "SELECT count(*) FROM customer_insights WHERE household = ?", me) == [(1,)]

        withdrawn = {"personalisation": True, "analytics": False}
        assert (await call("PUT", f"{api}/customers/{me}/consent", STAFF_TOKEN, withdrawn))[0] == 200
        # In the consent's own transaction: gone before the answer came back.
        assert rows(db, "SELECT count(*) FROM customer_scores WHERE household = ?", me) == [(0,)]
        assert rows(db, "SELECT count(*) FROM customer_insights WHERE household = ?", me) == [(0,)]
        assert (await call("GET", f"{api}/customers/{me}/insights", STAFF_TOKEN))[0] == 403
        # Central hears of the withdrawal (and deletes its analytics rows: tests/sync).
        events = [
            json.loads(b)
            for (b,) in rows(db, "SELECT body FROM outbox WHERE kind = 'consent' AND entity = ?", me)
        ]
        assert events[-1]["analytics"] is False


async def test_a_model_set_without_customer_models_turns_the_feature_off(
    tmp_path: Path, broker: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    model_set = tmp_path / "models"
    shutil.copytree(TRAINED_DIR, model_set, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    shutil.rmtree(model_set / CUSTOMERS_DIR)
    config, report = seeded(tmp_path, broker, dir=str(model_set))
    me = store_pseudonymiser(load_config(config)).household_id(report.cards[0])
    with caplog.at_level(logging.INFO, logger="edge.customers.scores"):
        async with run_daemon(config) as d:
            api = f"{d.url}/api/v1"
            await grant_analytics(d.daemon.writer, [me])
            status, document = await call("GET", f"{api}/customers/{me}/insights", STAFF_TOKEN)
            assert status == 200, document
            assert document["churn_risk"]["band"] is None
            assert document["churn_risk"]["confidence"] == 0.0
            assert "no customer models" in document["churn_risk"]["reasoning"]
            assert document["consumption"]["categories"]  # what needs no customer model is still there
            status, segments = await call("GET", f"{api}/analytics/customer-segments", STAFF_TOKEN)
            assert (status, segments["available"], segments["segments"]) == (200, False, [])
    assert any(r.message == "customer_models_absent" for r in caplog.records)
