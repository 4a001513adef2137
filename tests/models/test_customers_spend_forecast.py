"""The direct spend forecasts (`models.customers.spend_forecast`): the median regression, the blend,
the features (from the days before the cutoff only), the cross-validated choice, and their rows in the
CLV report against the own-recent-spend baseline."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import msgspec
import numpy as np
import pytest

from models.customers.btyd_selection import Candidates, fit_candidates
from models.customers.evaluate import ClvReport, evaluate_clv, train_customer_model
from models.customers.forecast import SpendForecast
from models.customers.report import format_clv, report_json
from models.customers.rfm import Purchases, load_purchases
from models.customers.spend import SpendVariant, spend_per_trip, variant_named
from models.customers.spend_forecast import (
    FORECAST_CANDIDATES,
    SpendForecaster,
    cross_validated_mae,
    fit_forecast,
    forecast_at,
    median_regression,
    pseudo_window,
    select_forecast,
    spend_features,
)
from models.history import PurchaseHistory, load_history
from simulators.household_history import HouseholdSimConfig, simulate_households, write_history

FAST: Candidates = (("bgnbd", False, None),)
WHOLE = SpendVariant(None, None)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> PurchaseHistory:
    sim = simulate_households(HouseholdSimConfig(seed=5, households=120, days=240, start=date(2024, 1, 1)))
    path: Path = tmp_path_factory.mktemp("forecast") / "h.npz"
    write_history(sim, path)
    return load_history(path)


def _features(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    own = rng.gamma(2.0, 50.0, n)
    return {
        "own90": own,
        "s30x3": own * rng.uniform(0.5, 1.5, n),
        "btyd": rng.gamma(2.0, 50.0, n),
        "trips": rng.uniform(0, 10, n),
        "per_trip": rng.uniform(10, 40, n),
        "p_alive": rng.uniform(0, 1, n),
        "recency_days": rng.uniform(0, 90, n),
        "trips90": rng.integers(0, 12, n).astype(float),
    }


def test_median_regression_finds_the_median_line_despite_outliers() -> None:
    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(400), rng.uniform(0, 100, 400)])
    y = 5.0 + 0.8 * x[:, 1] + rng.laplace(0, 1.0, 400)
    y[:40] += 1_000.0  # a tenth of the households with a huge spend: the median line does not move far
    coef = median_regression(x, y)
    assert coef == pytest.approx([5.0, 0.8], abs=0.6)
    least_squares = np.linalg.lstsq(x, y, rcond=None)[0]
    assert abs(least_squares[0] - 5.0) > 50  # what the outliers do to a mean line
    # An intercept alone is a median of the target.
    only = median_regression(np.ones((5, 1)), np.array([1.0, 2.0, 9.0, 40.0, 3.0]))
    assert only[0] == pytest.approx(3.0)


def test_blend_weight_and_forecaster_form() -> None:
    f = _features(300, 2)
    y = 0.3 * f["own90"] + 0.7 * f["btyd"]
    blend = fit_forecast("blend", f, y)
    assert blend.coef == pytest.approx({"own90": 0.3, "btyd": 0.7})
    np.testing.assert_allclose(blend.predict(f), y)
    line = SpendForecaster("l1_small", {"1": -50.0, "own90": 1.0})
    np.testing.assert_allclose(line.predict({"own90": np.array([10.0, 80.0])}), [0.0, 30.0])  # floored
    assert fit_forecast("own90", f, y).coef == {"own90": 1.0}


def test_the_choice_is_the_lowest_cross_validated_mae() -> None:
    f = _features(500, 3)
    rng = np.random.default_rng(4)
    # Spend driven by the last 30 days and the trips, which only the full regression sees.
    y = np.maximum(0.9 * f["s30x3"] + 6.0 * f["trips90"] + rng.laplace(0, 5.0, 500), 0.0)
    chosen, cv = select_forecast(f, y, seed=0)
    assert list(cv) == list(FORECAST_CANDIDATES)
    assert chosen == "l1_full" == min(cv, key=cv.__getitem__)
    assert cv["l1_full"] < 0.5 * cv["own90"]
    assert cv["own90"] == pytest.approx(float(np.abs(f["own90"] - y).mean()))
    # Held-out folds: a model fitted on every household does better on them than cross-validation says.
    full = fit_forecast("l1_full", f, y)
    assert float(np.abs(full.predict(f) - y).mean()) < cross_validated_mae("l1_full", f, y, seed=0)
    # Ties go to the simpler candidate: a target the model figure gives exactly.
    assert select_forecast(f, f["btyd"], seed=0)[0] == "btyd"


def _tiny() -> Purchases:
    customer = ["a", "a", "a", "a", "b", "b", "c"]
    day = [0, 100, 170, 195, 10, 150, 199]
    spend = [10.0, 20.0, 40.0, 8.0, 3.0, 5.0, 7.0]
    return Purchases("test", np.array(customer), np.array(day, dtype=np.int64), np.array(spend))


def test_features_come_from_their_windows_before_the_cutoff() -> None:
    p = _tiny()
    end = 200
    full = p.summary(end, 0.0, 90.0)
    fitted = fit_candidates(p, end, 0.0, FAST)["bgnbd"]
    per_trip = np.array([1.0, 2.0, 3.0])
    f = spend_features(p, end, full, fitted, per_trip, 90.0, long=True)
    assert full.customers.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(f["s30x3"], [3 * (40 + 8), 0.0, 3 * 7.0])  # days 170..199
    np.testing.assert_allclose(f["s180h"], [(20 + 40 + 8) / 2, 5.0 / 2, 7.0 / 2])  # days 20..199
    np.testing.assert_allclose(f["trips90"], [2, 1, 1])  # days 110..199
    np.testing.assert_allclose(f["recency_days"], [5, 50, 1])
    # c was born on day 199: its first trip is left out and nothing is scaled up from it.
    np.testing.assert_allclose(f["own90"], [40 + 8, 5.0, 0.0])
    np.testing.assert_allclose(f["btyd"], f["trips"] * per_trip)
    assert "s180h" not in spend_features(p, end, full, fitted, per_trip, 90.0, long=False)


def test_the_pseudo_window_sees_nothing_on_or_after_its_cutoff(simulated: PurchaseHistory) -> None:
    p = load_purchases("simulated", simulated)
    start, end = int(p.day.min()), int(p.day.max()) + 1
    window = pseudo_window(p, start, end, FAST[0], WHOLE, 60.0)
    assert window.cutoff == end - 60
    assert window.long == (window.cutoff - start >= 180)
    later = p.day >= window.cutoff
    doubled = Purchases(p.source, p.customer, p.day, np.where(later, 2.0 * p.spend, p.spend))
    again = pseudo_window(doubled, start, end, FAST[0], WHOLE, 60.0)
    for name, values in window.features.items():
        np.testing.assert_array_equal(again.features[name], values, err_msg=name)
    np.testing.assert_allclose(again.target, 2.0 * window.target)
    assert window.target.sum() > 0
    # Data shorter than twice the horizon before the cutoff: no window to learn from.
    s = p.summary(start + 100, 60.0, 60.0)
    fitted = fit_candidates(p, start + 100, 60.0, FAST)["bgnbd"]
    per_trip = spend_per_trip(p, start + 100, s, (WHOLE,))[WHOLE.name][1]
    args = (p, (start, start + 100, 60.0), s, (FAST[0], fitted), (WHOLE, per_trip), np.zeros(s.size))
    assert forecast_at(*args, seed=0, rounds=10) is None


def test_clv_report_scores_every_forecast_against_the_baseline(simulated: PurchaseHistory) -> None:
    report = evaluate_clv(
        "simulated", history=simulated, candidates=FAST, horizon_days=60, bootstrap=100, by_segment=False
    )
    forecast = report.spend_forecast
    assert forecast is not None
    rows = {r.name: r for r in forecast.rows}
    assert list(rows) == list(FORECAST_CANDIDATES)
    assert [r.name for r in forecast.rows if r.selected] == [forecast.selected]
    assert forecast.selected == min(rows, key=lambda n: rows[n].cv_mae)
    by_name = {r.name: r for r in report.rows}
    # `own90` is the report's own baseline and `btyd` its selected model: the same errors exactly.
    assert rows["own90"].spend_mae == by_name["own trips before cutoff"].spend_mae
    assert rows["own90"].minus_baseline.value == 0.0
    assert rows["btyd"].spend_mae == by_name[report.selected].spend_mae
    assert rows["btyd"].minus_baseline == report.spend_mae_vs_baseline
    chosen = rows[forecast.selected].minus_baseline
    assert forecast.beats_baseline == (chosen.high < 0)
    assert msgspec.json.decode(report_json(report), type=ClvReport) == report
    table = format_clv(report)
    assert "direct spend forecasts" in table
    assert f"{forecast.selected} (selected)" in table


def test_shipped_card_holds_the_forecast_chosen_on_the_last_window(simulated: PurchaseHistory) -> None:
    params = train_customer_model("simulated", history=simulated, candidates=FAST)
    card = params.card["spend_forecast"]
    assert isinstance(card, dict)
    p = load_purchases("simulated", simulated)
    end = int(p.day.max()) + 1
    spend = variant_named(str(params.card["spend_selected"]))
    window = pseudo_window(p, int(p.day.min()), end, FAST[0], spend, 90.0)
    assert card["pseudo_cutoff_day"] == end - 90 == window.cutoff
    assert card["selected"] == select_forecast(window.features, window.target, seed=0)[0]
    assert card["coef"] == fit_forecast(str(card["selected"]), window.features, window.target).coef
    # ... and serves it: the params' own field, which the edge evaluates (edge.customers.spend_forecast)
    assert params.spend_forecast == SpendForecast(
        name=str(card["selected"]), coef=card["coef"], horizon_days=90.0
    )
