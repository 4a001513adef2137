"""The insights document, built from made-up purchases whose answers are known by construction; the
walker that finds any field naming a declined inference (and that it does find a planted one); the
model bundle check of the customer models."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from edge.customers.insights_data import InsightInputs, Line, PromotionWindow
from edge.customers.insights_document import NOT_INFERRED, build_insights
from edge.customers.offers import Promotion
from edge.customers.score_tables import CustomerScore
from edge.customers.scores import load_customer_models
from edge.uplink.bundle_checks import check_customer_models
from models.cards import CUSTOMERS_DIR
from models.inference import TRAINED_DIR
from sync.errors import BundleError

DAY = 86_400_000
NOW = 1_780_000_000_000 - 1_780_000_000_000 % DAY + 12 * 3_600_000  # noon UTC
# Words naming an inference the product declines (GDPR Art. 9 and 22; docs/customers.md). "household" is
# the pseudonymous id everywhere, so family composition is matched by its own words.
DECLINED = re.compile(
    r"personalit|emotion|mood|feeling|health|medical|illness|disease|diagnos|pregnan|diabet|allerg"
    r"|income|salary|wealth|afflu|poverty|earnings|family|children|child|kids|marital|married|spouse"
    r"|household_size|religio|ethnic|sexual|political",
    re.IGNORECASE,
)
DECLARATION = "not_inferred"  # the one field that names them: the list of what is not inferred


def declined_inferences(value: Any, path: str = "$") -> list[str]:
    """Paths of every key or string value that names a declined inference, outside `DECLARATION`."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == DECLARATION:
                continue
            if DECLINED.search(str(key)):
                found.append(f"{path}.{key} (key)")
            found += declined_inferences(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += declined_inferences(item, f"{path}[{index}]")
    elif isinstance(value, str) and DECLINED.search(value):
        found.append(f"{path} = {value!r}")
    return found


def line(
    day: int, category: str, sku: str, price: float, qty: float = 1.0, purchase: int | None = None
) -> Line:
    return Line(purchase if purchase is not None else day, NOW - day * DAY, sku, category, qty, price)


def inputs(lines: list[Line], **changes: Any) -> InsightInputs:
    baskets: dict[int, tuple[int, float]] = {}
    for item in lines:
        ts, total = baskets.get(item.purchase, (item.ts_ms, 0.0))
        baskets[item.purchase] = (ts, total + item.qty * item.unit_price)
    base = InsightInputs(
        household="hh_test",
        now_ms=NOW,
        offset_ms=0,
        history_days=365,
        lines=tuple(lines),
        baskets=tuple(sorted((pid, ts, total) for pid, (ts, total) in baskets.items())),
        category_price={"milk": 1.0, "coffee": 4.0, "bread": 2.0},
        skus_per_category={"milk": 2, "coffee": 3, "bread": 1},
        store_basket_mean=5.0,
        promotions=(),
        store_promoted_share={},
        score=None,
        peer_categories=(),
        peers=0,
        peer_group="store",
        catalogue_has_brand=False,
    )
    return dataclasses.replace(base, **changes)


def build(data: InsightInputs, promotions: tuple[Promotion, ...] = ()) -> dict[str, Any]:
    document = build_insights(
        data, segment=None, promotions=promotions, tz=dt.UTC, clv_horizon_days=365, currency="EUR"
    )
    return msgspec.to_builtins(document)


WEEKLY_MILK = [line(7 * k + 1, "milk", "milk-cheap", 0.8, purchase=k) for k in range(12)]


def test_consumption_patterns_come_from_the_models_features() -> None:
    doc = build(inputs(WEEKLY_MILK))
    (milk,) = doc["consumption"]["categories"]
    assert milk["category"] == "milk"
    assert milk["purchases"] == 12
    assert milk["average_interval_days"] == 7.0
    assert milk["interval_sd_days"] == 0.0
    assert milk["trend"] == "steady"
    weekday = dt.datetime.fromtimestamp((NOW - DAY) / 1000, dt.UTC).strftime("%A")
    assert milk["seasonality"] == f"weekly: mostly on {weekday}s (100% of purchases)"
    assert milk["days_since_last"] == 1.0
    assert "every 7 days" in milk["reasoning"]
    assert "two years" in milk["reasoning"]  # annual seasonality: said, not guessed


def test_economic_profile_from_purchases_only() -> None:
    coffee = [
        line(10 * k + 2, "coffee", "coffee-a" if k < 4 else "coffee-b", 5.0, purchase=100 + k)
        for k in range(5)
    ]
    bread = [line(3 * k + 1, "bread", "bread", 2.0, purchase=200 + k) for k in range(3)]
    doc = build(inputs(WEEKLY_MILK + coffee + bread))
    economics = doc["economic_profile"]
    # Paid 12 x 0.8 + 5 x 5.0 where the store's means are 12 x 1.0 + 5 x 4.0 (bread: one SKU, no choice).
    assert economics["price_sensitivity"]["value"] == pytest.approx((9.6 + 25.0) / (12.0 + 20.0), abs=1e-3)
    assert economics["brand_loyalty"]["value"] is None
    assert "no brand" in economics["brand_loyalty"]["reasoning"]
    # milk: 12 of 12 on one SKU; coffee: 4 of 5 -> 16 / 17.
    assert economics["product_loyalty"]["value"] == pytest.approx(16 / 17, abs=1e-3)
    assert economics["promotion_responsiveness"]["value"] is None  # no promotion in its categories
    baskets = 12 + 5 + 3
    assert economics["average_basket_value"]["value"] == pytest.approx((9.6 + 25.0 + 6.0) / baskets, abs=0.01)
    # 78 days of shopping: two full 4-week periods, fewer than the three a spread needs.
    assert economics["spending_consistency"]["value"] is None
    assert economics["spending_consistency"]["reasoning"].endswith("it has 2")


def test_spending_consistency_is_the_spread_of_4_week_spend() -> None:
    steady = [line(7 * k + 1, "milk", "milk-cheap", 1.0, purchase=k) for k in range(16)]  # 4 per period
    measure = build(inputs(steady))["economic_profile"]["spending_consistency"]
    assert (measure["value"], measure["level"]) == (0.0, "steady")
    # Three full periods (the 22 newest days are a partial one, left out); doubling the oldest period's
    # trips at twice the price makes its spend 12 against 4 and 4.
    uneven = steady + [line(7 * k + 1, "milk", "milk-cheap", 2.0, purchase=100 + k) for k in range(12, 16)]
    expected = float(np.std([12.0, 4.0, 4.0]) / np.mean([12.0, 4.0, 4.0]))
    measure = build(inputs(uneven))["economic_profile"]["spending_consistency"]
    assert measure["value"] == pytest.approx(expected, abs=1e-3)
    assert measure["level"] == "fairly steady"


def test_promotion_responsiveness_is_a_lift_over_the_store() -> None:
    window = PromotionWindow("milk", NOW - 30 * DAY, NOW)  # the last 30 days: 5 of its 12 milk days
    data = inputs(WEEKLY_MILK, promotions=(window,), store_promoted_share={"milk": 0.25})
    measure = build(data)["economic_profile"]["promotion_responsiveness"]
    assert measure["value"] == pytest.approx((5 / 12) / 0.25, abs=1e-3)
    assert measure["level"] == "responds to promotions"
    always = inputs(WEEKLY_MILK, promotions=(window,), store_promoted_share={"milk": 1.0})
    assert build(always)["economic_profile"]["promotion_responsiveness"]["value"] is None


def test_scores_segment_and_opportunities_with_their_reasons() -> None:
    score = CustomerScore(
        household="hh_test", expected_trips_90d=12.5, expected_spend_90d=60.0, p_alive=0.97, p_churn=0.02,
        churn_band="active", churn_reason="you shop about every 7 days; the last trip was 1 day ago",
        clv=220.5, clv_horizon_days=365, segment=None, model_version="customers-x", segments_version=None,
        scored_ms=NOW,
    )  # fmt: skip
    peers = (("milk", 0.9), ("bread", 0.6), ("coffee", 0.5), ("tea", 0.2))
    forever = {"starts": dt.date(2020, 1, 1), "ends": dt.date(2099, 1, 1)}
    promotions = (
        Promotion(id="p-bread", category="bread", title="Bread", **forever),
        Promotion(id="p-tea", category="tea", title="Tea", **forever),
    )
    data = inputs(WEEKLY_MILK, score=score, peer_categories=peers, peers=40, peer_group="store")
    doc = build(data, promotions)
    assert doc["churn_risk"]["band"] == "active"
    assert doc["churn_risk"]["reasoning"].startswith(score.churn_reason)
    assert doc["lifetime_value"]["clv"] == 220.5
    assert doc["segment"]["id"] is None
    assert [o["category"] for o in doc["opportunities"]["categories"]] == ["bread", "coffee"]  # tea: 20%
    assert [o["id"] for o in doc["opportunities"]["offers"]] == ["p-bread"]
    few = build(inputs(WEEKLY_MILK, peer_categories=(), peers=4))
    assert "fewer than 10" in few["opportunities"]["reasoning"]


def confidences(value: Any) -> list[tuple[float, str]]:
    """(confidence, reasoning) of every part of a document."""
    out: list[tuple[float, str]] = []
    if isinstance(value, dict):
        if "confidence" in value:
            out.append((value["confidence"], value["reasoning"]))
        for item in value.values():
            out += confidences(item)
    elif isinstance(value, list):
        for item in value:
            out += confidences(item)
    return out


def test_every_part_has_a_confidence_and_a_reasoning_and_nothing_declined() -> None:
    doc = build(inputs(WEEKLY_MILK))
    parts = confidences(doc)
    for name in ("consumption", "churn_risk", "lifetime_value", "segment", "opportunities"):
        assert "confidence" in doc[name]
    assert len(parts) >= 12
    assert all(0.0 <= c <= 1.0 and r.strip() for c, r in parts)
    assert declined_inferences(doc) == []
    assert [n["inference"] for n in doc["not_inferred"]] == [n.inference for n in NOT_INFERRED]
    assert len(declined_inferences({"x": doc["not_inferred"]})) >= 5  # the declaration does name them


def test_the_walker_finds_a_planted_inference() -> None:
    doc = build(inputs(WEEKLY_MILK))
    planted_key = {**doc, "economic_profile": {**doc["economic_profile"], "estimated_income": 42000}}
    assert declined_inferences(planted_key) == ["$.economic_profile.estimated_income (key)"]
    planted_value = {**doc, "segment": {**doc["segment"], "description": "young family with kids"}}
    assert declined_inferences(planted_value) == ["$.segment.description = 'young family with kids'"]
    nested = {**doc, "consumption": {"categories": [{"mood": "stressed"}]}}
    assert declined_inferences(nested) == ["$.consumption.categories[0].mood (key)"]


def test_bundle_check_of_the_customer_models(tmp_path: Path) -> None:
    shipped = load_customer_models(TRAINED_DIR)
    assert shipped is not None
    assert shipped.segments is not None  # the shipped set has both
    check_customer_models(TRAINED_DIR)
    model_set = tmp_path / "set"
    shutil.copytree(TRAINED_DIR / CUSTOMERS_DIR, model_set / CUSTOMERS_DIR)
    check_customer_models(model_set)
    (model_set / CUSTOMERS_DIR / "params.json").write_text('{"trips": {"kind": "bgnbd"}}')
    with pytest.raises(BundleError, match=r"params\.json"):
        check_customer_models(model_set)
    shutil.copy(TRAINED_DIR / CUSTOMERS_DIR / "params.json", model_set / CUSTOMERS_DIR / "params.json")
    (model_set / CUSTOMERS_DIR / "segments.json").write_text('{"format": "other"}')
    with pytest.raises(BundleError, match=r"segments\.json"):
        check_customer_models(model_set)
    # Segments over other features than this code computes: refused (a daemon serves CLV without them).
    other = json.loads((TRAINED_DIR / CUSTOMERS_DIR / "segments.json").read_text())
    other["features"] = [*other["features"][:-1], "something_else"]
    (model_set / CUSTOMERS_DIR / "segments.json").write_text(json.dumps(other))
    with pytest.raises(BundleError, match="not this code's"):
        check_customer_models(model_set)
    without = load_customer_models(model_set, segments=False)
    assert without is not None
    assert without.segments is None
    shutil.rmtree(model_set / CUSTOMERS_DIR)
    check_customer_models(model_set)  # absent: the feature is off, the bundle is fine
    assert load_customer_models(model_set) is None


def test_store_trips_are_scored_as_the_models_summarise_them() -> None:
    """Four trips a week apart (one of them two baskets on one day), scored the day after a week without a
    trip: the summary is x = 3 repeat trips, t_x = 21 days, T = 28 days, the mean of the repeat trips'
    spend, and the figures are the model's own for that summary."""
    from edge.customers.scores import Trips, score_trips
    from models.customers.scoring import churn_band, score_households

    models = load_customer_models(TRAINED_DIR)
    assert models is not None
    trips = Trips(
        ("hh_a",),
        np.zeros(5, dtype=np.int64),
        np.array([100, 107, 114, 114, 121], dtype=np.int64),
        np.array([20.0, 25.0, 10.0, 20.0, 22.0]),
        None,
    )
    (scored,) = score_trips(models, trips, today=128, now_ms=NOW, clv_days=365)
    expected = score_households(
        models.params, x=[3], t_x_days=[21], T_days=[28], zbar=[(25 + 30 + 22) / 3], first_spend=[20.0],
        horizon_days=90, churn_days=56, clv_days=365,
    )  # fmt: skip
    assert scored.expected_trips_90d == pytest.approx(float(expected.expected_trips[0]), abs=0.01)
    assert scored.p_alive == pytest.approx(float(expected.p_alive[0]), abs=1e-4)
    assert scored.clv == pytest.approx(float(expected.clv[0]), abs=0.01)
    band, reason = churn_band(
        p_alive=float(expected.p_alive[0]), p_churn=float(expected.p_churn[0]), days_since_last=7.0,
        mean_interval_days=7.0,
    )  # fmt: skip
    assert (scored.churn_band, scored.churn_reason) == (band, reason)
    assert scored.segment is None  # no lines: no segment
