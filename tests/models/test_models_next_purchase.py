"""Next purchase: the hazard arithmetic by hand, censoring in the training rows, and held-out metrics
that beat the median-interval baseline on simulated data the model never saw."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from models.features import FEATURE_NAMES, F
from models.history import PurchaseHistory, epoch_day, make_history
from models.next_purchase import (
    BIN_EDGES,
    HAZARD_FEATURES,
    HORIZON_DAYS,
    N_BINS,
    empirical_interval_probability,
    hazard_rows,
    median_interval_days,
    purchase_gaps,
    scores_from_hazard,
)
from models.targets import first_purchase_days, snapshot_days
from models.training import next_purchase_rows

from .conftest import Trained


def test_probabilities_from_a_constant_hazard() -> None:
    h = 0.2
    scores = scores_from_hazard(np.full((1, N_BINS), h))
    survival = {0: 1.0}
    for k in range(N_BINS):
        survival[BIN_EDGES[k + 1]] = survival[BIN_EDGES[k]] * (1 - h)
    for d in (1, 2, 7, 14):
        assert scores.p_within_days(d)[0] == pytest.approx(1 - survival[d])
    assert scores.p_horizon[0] == pytest.approx(1 - survival[HORIZON_DAYS])
    # Median given a purchase within the horizon: half of p_horizon is reached in bin [2, 4):
    # P(T < 2) = 0.36, p_horizon / 2 = 0.4161, and day 2 alone carries 0.064 (half of bin [2, 4)).
    assert scores.p_horizon[0] / 2 == pytest.approx(0.41611392)
    assert scores.expected_days[0] == 2
    # Confidence: P(|T - 2| <= 7) = P(T <= 9) = P(T < 7) + 3/7 of P(7 <= T < 14).
    p7, p14 = 1 - survival[7], 1 - survival[14]
    assert scores.confidence[0] == pytest.approx(p7 + (p14 - p7) * 3 / 7)


def test_a_pair_that_is_never_bought_again_has_no_date_but_the_horizon() -> None:
    scores = scores_from_hazard(np.zeros((1, N_BINS)))
    assert scores.p_horizon[0] == 0
    assert scores.expected_days[0] == HORIZON_DAYS
    assert scores.confidence[0] == 0


def test_certain_purchase_today() -> None:
    hazard = np.zeros((1, N_BINS))
    hazard[0, 0] = 1.0
    scores = scores_from_hazard(hazard)
    assert scores.p_within_days(1)[0] == 1
    assert scores.expected_days[0] == 0


def test_weekday_habit_moves_the_date_within_a_bin() -> None:
    hazard = np.zeros((1, N_BINS))
    hazard[0, BIN_EDGES.index(7)] = 1.0  # certainly bought in days 7..13
    x = np.full((1, len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    for j in range(7):
        x[0, F[f"trip_dow_share_{j}"]] = 1.0 if j == 4 else 0.0  # always shops 4 days after now's weekday
    scores = scores_from_hazard(hazard, x)
    assert scores.expected_days[0] == 11  # the shopping day in days 7..13
    assert scores_from_hazard(hazard).expected_days[0] == 10  # evenly: the middle day


def test_hazard_rows_add_the_bin_columns() -> None:
    x = np.zeros((2, len(FEATURE_NAMES)), dtype=np.float32)
    x[:, F["recency_days"]] = [3, 10]
    x[:, F["interval_median"]] = [6, 5]
    rows = hazard_rows(x)
    assert rows.shape == (2 * N_BINS, len(HAZARD_FEATURES))
    col = {name: i for i, name in enumerate(HAZARD_FEATURES)}
    assert rows[N_BINS + 2, col["bin_start"]] == BIN_EDGES[2]
    assert rows[N_BINS + 2, col["recency_at_bin"]] == 10 + BIN_EDGES[2]
    assert rows[2, col["ratio_at_bin"]] == pytest.approx((3 + BIN_EDGES[2]) / 6)


def test_baseline_is_median_gap_minus_recency() -> None:
    x = np.zeros((3, len(FEATURE_NAMES)), dtype=np.float32)
    x[:, F["interval_median"]] = [7, 7, np.nan]
    x[:, F["recency_days"]] = [3, 9, 1]
    got = median_interval_days(x)
    assert got[:2].tolist() == [4, 0]
    assert np.isnan(got[2])


def test_censored_pairs_only_contribute_the_bins_they_were_watched() -> None:
    d0 = epoch_day(date(2024, 1, 1))
    rows = []
    # Household 0 buys category 0 every 7 days until day 98, then never again (censored).
    rows += [(0, 0, d) for d in range(0, 99, 7)]
    # Household 1 buys category 0 every 10 days throughout.
    rows += [(1, 0, d) for d in range(0, 200, 10)]
    history = make_history(
        ["h0", "h1"],
        ["milk"],
        {
            "household": [r[0] for r in rows],
            "category": [r[1] for r in rows],
            "day": [d0 + r[2] for r in rows],
            "minute": [600] * len(rows),
            "basket": list(range(len(rows))),
            "qty": [1.0] * len(rows),
            "price": [1.0] * len(rows),
            "promo": [False] * len(rows),
        },
    )
    cutoff = d0 + 140
    snapshots = snapshot_days(history.first_day, cutoff)
    assert snapshots == [cutoff - 28, cutoff - 56, cutoff - 84]
    training = next_purchase_rows(history, cutoff)
    col = {name: i for i, name in enumerate(HAZARD_FEATURES)}
    start = training.x[:, col["bin_start"]]
    width = training.x[:, col["bin_width"]]
    # The nearest snapshot (day 112) watches 28 days: its rows are for bins ending by day 28 only.
    nearest = training.x[:, col["tenure_days"]] == 112
    assert nearest.any()
    assert np.all(start[nearest] + width[nearest] <= 28)
    assert np.all(start + width <= 91)
    # Household 0 at the nearest snapshot (day 112): last bought on day 98 (14 days ago) and never
    # again: censored. It contributes one row per bin inside the 28 watched days, all labelled 0.
    assert first_purchase_days(history, [0], [0], cutoff - 28, cutoff).tolist() == [-1]
    h0 = nearest & (training.x[:, col["recency_days"]] == 14)
    assert start[h0].tolist() == [0, 1, 2, 4, 7, 14]
    assert training.y[h0].tolist() == [0] * 6
    # Household 1 (every 10 days, last on day 110) buys again on day 120 = 8 days after the snapshot:
    # rows for bins [0,1) .. [7,14), the last labelled 1, then it leaves the risk set.
    h1 = nearest & (training.x[:, col["recency_days"]] == 2)
    assert start[h1].tolist() == [0, 1, 2, 4, 7]
    assert training.y[h1].tolist() == [0, 0, 0, 0, 1]


def test_held_out_metrics_beat_the_baseline_on_simulated_data(trained: Trained) -> None:
    report = trained.report["next_purchase"]
    model, baseline = report["model"], report["baseline"]
    assert model["pairs"] == baseline["pairs"] > 1000
    assert 0 < report["censored_share"] < 0.5
    assert model["mae_days"] < baseline["mae_days"]
    assert model["within_7d"] > baseline["within_7d"]
    assert model["ece"] < baseline["ece"]
    assert model["ece_7d"] < 0.05
    # The "likeliest week" date trades MAE for more dates within a week.
    assert report["model_best_week"]["within_7d"] >= model["within_7d"]
    assert report["per_category"], "per-category metrics are reported"
    for metrics in report["per_category"].values():
        assert set(metrics) == {"model", "baseline"}


def _history(rows: list[tuple[str, str, int]], d0: int) -> PurchaseHistory:
    return make_history(
        sorted({r[0] for r in rows}),
        sorted({r[1] for r in rows}),
        {
            "household": [sorted({r[0] for r in rows}).index(r[0]) for r in rows],
            "category": [sorted({r[1] for r in rows}).index(r[1]) for r in rows],
            "day": [d0 + r[2] for r in rows],
            "minute": [600] * len(rows),
            "basket": list(range(len(rows))),
            "qty": [1.0] * len(rows),
            "price": [1.0] * len(rows),
            "promo": [False] * len(rows),
        },
    )


def test_empirical_interval_probability_by_hand() -> None:
    d0 = epoch_day(date(2024, 1, 1))
    rows = [("a", "milk", d) for d in (0, 7, 14, 21, 35)]  # gaps 7, 7, 7, 14
    rows += [("b", "milk", d) for d in (0, 30)]  # gap 30
    rows += [("b", "eggs", d) for d in (0, 3)]  # gap 3
    rows += [("c", "eggs", d) for d in (0, 2)]  # gap 2
    history = _history(rows, d0)
    gap_pair, gap = purchase_gaps(history, d0 + 40)
    assert sorted(gap.tolist()) == [2, 3, 7, 7, 7, 14, 30]
    assert gap_pair.size == gap.size
    hh, cat = history.households.index, history.categories.index
    h = [hh("a"), hh("b"), hh("b")]
    c = [cat("milk"), cat("milk"), cat("eggs")]
    now = d0 + 40
    p7 = empirical_interval_probability(history, h, c, now, 7)
    p14 = empirical_interval_probability(history, h, c, now, 14)
    # a/milk: last bought day 35, s = 5; all 4 gaps >= 5; in [5, 12): the three 7s; in [5, 19): all 4.
    # Smoothed (k + 0.5) / (n + 1): 3.5 / 5 and 4.5 / 5.
    assert p7[0] == pytest.approx(0.7)
    assert p14[0] == pytest.approx(0.9)
    # b/milk: s = 10, its only gap (30) >= 10 but not < 17 or < 24: 0.5 / 2.
    assert p7[1] == pytest.approx(0.25)
    assert p14[1] == pytest.approx(0.25)
    # b/eggs: s = 37, no gap of its own reaches it, nor any eggs gap (2, 3): fallback, 0.5 / 1.
    assert p7[2] == pytest.approx(0.5)
    # Earlier (day 32, s = 2) b/milk's own gap 30 is >= 2 but not < 9: still its own, 0.5 / 2.
    early = empirical_interval_probability(history, [hh("b")], [cat("milk")], d0 + 32, 7)
    assert early[0] == pytest.approx(0.25)


def test_empirical_interval_falls_back_to_the_category() -> None:
    d0 = epoch_day(date(2024, 1, 1))
    # c/eggs: gap 2, last bought day 2; at day 7, s = 5 > 2: the pooled eggs gaps >= 5 are 9
    # and 18 (household d): 9 is in [5, 12), 18 is not -> (1 + 0.5) / (2 + 1) = 0.5; both are in
    # [5, 19) -> (2 + 0.5) / 3.
    rows = [("c", "eggs", d) for d in (0, 2)] + [("d", "eggs", d) for d in (-40, -31, -13)]
    history = _history(rows, d0)
    h, c = [history.households.index("c")], [history.categories.index("eggs")]
    assert empirical_interval_probability(history, h, c, d0 + 7, 7)[0] == pytest.approx(0.5)
    assert empirical_interval_probability(history, h, c, d0 + 7, 14)[0] == pytest.approx(2.5 / 3)


def test_held_out_probability_scores_on_simulated_data(trained: Trained) -> None:
    report = trained.report["next_purchase"]
    empirical, better = report["baseline_empirical"], report["improvement_over_empirical"]
    assert empirical["pairs"] == report["model"]["pairs"]
    for side in (report["model"], empirical, report["baseline"]):
        for days in ("7d", "14d"):
            assert 0 < side[f"brier_{days}"] < 0.5
            assert 0 < side[f"log_loss_{days}"] < 20
    for key in ("brier_7d", "brier_14d", "log_loss_7d", "log_loss_14d"):
        model, baseline = report["model"][key], empirical[key]
        assert better[key] == pytest.approx((baseline - model) / baseline)
    # The 0/1 point baseline is far worse than any probability on log loss.
    assert report["baseline"]["log_loss_7d"] > empirical["log_loss_7d"] > report["model"]["log_loss_7d"]
