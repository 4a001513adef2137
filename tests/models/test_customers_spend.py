"""The spend-per-trip variants (`models.customers.spend`): each takes the household's x and mean spend
from its own period, the choice is the lowest mean pseudo-holdout spend MAE (recomputed here by hand),
`evaluate_clv` reports every variant against the baseline, and what ships scores spend per trip on the
edge exactly as the evaluation did."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import msgspec
import numpy as np
import pytest

from models.customers.btyd import GammaGamma, expected_spend
from models.customers.btyd_selection import PSEUDO_SPLITS, Candidates, fit_candidates
from models.customers.evaluate import ClvReport, evaluate_clv, train_customer_model
from models.customers.report import format_clv, report_json
from models.customers.rfm import Purchases, load_purchases
from models.customers.scoring import score_households, spend_inputs
from models.customers.spend import (
    SPEND_CANDIDATES,
    SpendVariant,
    fit_spend,
    per_trip,
    select_spend,
    spend_per_trip,
    variant_named,
)
from models.history import PurchaseHistory, load_history
from simulators.household_history import HouseholdSimConfig, simulate_households, write_history

FAST: Candidates = (("bgnbd", False, None), ("bgnbd", False, 56))
SPEND = GammaGamma(p=2.0, q=3.0, gamma=10.0)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> PurchaseHistory:
    sim = simulate_households(HouseholdSimConfig(seed=5, households=120, days=240, start=date(2024, 1, 1)))
    path: Path = tmp_path_factory.mktemp("spend") / "h.npz"
    write_history(sim, path)
    return load_history(path)


def _tiny() -> Purchases:
    customer = ["a", "a", "a", "b", "b", "c", "c", "c"]
    day = [0, 30, 60, 2, 5, 55, 70, 85]
    spend = [10.0, 20.0, 40.0, 3.0, 5.0, 5.0, 7.0, 9.0]
    return Purchases("test", np.array(customer), np.array(day, dtype=np.int64), np.array(spend))


def test_each_variant_takes_x_and_mean_spend_from_its_own_period() -> None:
    p = _tiny()
    full = p.summary(90)
    whole = per_trip(SPEND, p, 90, SpendVariant(None, None), full)
    recent = per_trip(SPEND, p, 90, SpendVariant(40, 40), full)
    population = 2.0 * 10.0 / (3.0 - 1.0)
    # Whole history: a 2 repeat trips averaging 30, b 1 of 5, c 2 of 8; p (gamma + x zbar) / (p x + q - 1).
    np.testing.assert_allclose(
        whole, [2 * (10 + 60) / (4 + 2), 2 * (10 + 5) / (2 + 2), 2 * (10 + 16) / (4 + 2)]
    )
    # Days 50..89: a is born at day 60 (no repeat trip), b has no trip, c repeats at 70 and 85.
    np.testing.assert_allclose(recent, [population, population, 2 * (10 + 16) / (4 + 2)])
    assert [v.name for v in SPEND_CANDIDATES] == [
        "gamma_gamma",
        "gamma_gamma@91d",
        "gamma_gamma@91d/whole-fit",
    ]
    assert variant_named("gamma_gamma@91d/whole-fit") == SpendVariant(None, 91)


def test_the_choice_is_the_lowest_mean_pseudo_holdout_spend_mae(simulated: PurchaseHistory) -> None:
    p = load_purchases("simulated", simulated)
    start, end = int(p.day.min()), int(p.day.max()) + 1 - 60
    trips = FAST[1]
    chosen, mae = select_spend(p, start, end, trips)
    assert chosen == min(mae, key=mae.__getitem__)
    by_hand = []
    for share in PSEUDO_SPLITS:  # the window variant, recomputed from its definition
        cut = start + round(share * (end - start))
        s = p.summary(cut, end - cut)
        forecast = fit_candidates(p, cut, end - cut, (trips,))["bgnbd@56d"].trips(s, end - cut)
        window = p.since(cut - 91).summary(cut)
        model = fit_spend(p, cut, SpendVariant(91, 91))
        own = dict(zip(window.customers.tolist(), expected_spend(model, window.x, window.zbar), strict=True))
        population = float(expected_spend(model, 0.0, 0.0))
        spend = np.array([own.get(c, population) for c in s.customers.tolist()])
        by_hand.append(float(np.mean(np.abs(forecast * spend - s.holdout_spend))))
    assert mae["gamma_gamma@91d"] == pytest.approx(float(np.mean(by_hand)))


def test_clv_report_has_every_spend_variant_against_the_baseline(simulated: PurchaseHistory) -> None:
    report = evaluate_clv("simulated", history=simulated, candidates=FAST, horizon_days=60, bootstrap=100)
    spend = {r.name: r for r in report.spend_rows}
    assert list(spend) == [v.name for v in SPEND_CANDIDATES]
    assert [r.name for r in report.spend_rows if r.selected] == [report.spend_selected]
    assert report.spend_selected == min(spend, key=lambda n: spend[n].selection_mae)
    rows = {r.name: r for r in report.rows}
    chosen = spend[report.spend_selected]
    assert rows[report.selected].spend_mae == chosen.spend_mae
    assert report.spend_mae_vs_baseline == chosen.minus_baseline
    assert report.spend_model == chosen.params
    baseline = rows["own trips before cutoff"].spend_mae
    assert baseline is not None
    for row in report.spend_rows:  # paired gap: the same customers, so the means subtract exactly
        assert row.minus_baseline.value == pytest.approx(row.spend_mae.value - baseline.value)
        assert row.minus_baseline.low <= row.minus_baseline.value <= row.minus_baseline.high
    assert msgspec.json.decode(report_json(report), type=ClvReport) == report
    table = format_clv(report)
    assert all(name in table for name in spend)


def test_shipped_params_score_spend_per_trip_as_the_evaluation_did(simulated: PurchaseHistory) -> None:
    params = train_customer_model("simulated", history=simulated, candidates=FAST)
    variant = variant_named(str(params.card["spend_selected"]))
    assert params.spend_window_days == variant.own_days
    p = load_purchases("simulated", simulated)
    end = int(p.day.max()) + 1
    assert params.spend == fit_spend(p, end, variant)
    # A 56-day trip model with the whole-history spend model: the edge summarises the trips over the
    # window and passes the spend inputs over every day, as `spend_per_trip` computes them in evaluation.
    shipped = msgspec.structs.replace(params, window_days=56, spend_window_days=None)
    window = p.since(end - 56).summary(end)
    inputs = spend_inputs(
        shipped, window.customers, customer=p.customer, day=p.day, spend=p.spend, end_day=end
    )
    assert inputs is not None
    scores = score_households(
        shipped,
        x=window.x,
        t_x_days=window.t_x * 7,
        T_days=window.T * 7,
        zbar=window.zbar,
        spend_x=inputs[0],
        spend_zbar=inputs[1],
    )
    evaluated = per_trip(shipped.spend, p, end, SpendVariant(None, None), window)
    np.testing.assert_allclose(scores.spend_per_trip, evaluated)
    assert not np.allclose(scores.spend_per_trip, expected_spend(shipped.spend, window.x, window.zbar))
    same = msgspec.structs.replace(shipped, spend_window_days=56)
    assert (
        spend_inputs(same, window.customers, customer=p.customer, day=p.day, spend=p.spend, end_day=end)
        is None
    )
    with pytest.raises(ValueError, match="both"):
        score_households(
            shipped, x=window.x, t_x_days=window.t_x, T_days=window.T, zbar=window.zbar, spend_x=window.x
        )


def test_the_whole_fit_variant_shares_the_whole_history_model() -> None:
    p = _tiny()
    variants = spend_per_trip(p, 90, p.summary(90), (SpendVariant(None, None), SpendVariant(None, 40)))
    (whole_model, _), (recent_model, recent) = variants.values()
    assert whole_model == recent_model  # the whole-fit variant shares the whole-history fit
    assert recent[1] == pytest.approx(float(expected_spend(whole_model, 0.0, 0.0)))
