"""Paired gaps between two predictors (`models.customers.intervals.paired_gap`)."""

from __future__ import annotations

import numpy as np

from models.customers.intervals import error_estimates, paired_gap


def test_a_predictor_against_itself_differs_by_exactly_nothing() -> None:
    rng = np.random.default_rng(1)
    y = rng.poisson(2.0, 500).astype(float)
    pred = y + rng.normal(0, 1, 500)
    gap = paired_gap(pred, pred, y, seed=0, rounds=200)
    assert (gap.rmse.value, gap.rmse.low, gap.rmse.high) == (0.0, 0.0, 0.0)
    assert (gap.corr.value, gap.corr.low, gap.corr.high) == (0.0, 0.0, 0.0)


def test_the_paired_interval_is_narrower_than_the_two_marginal_ones_and_sees_a_small_real_gain() -> None:
    rng = np.random.default_rng(2)
    y = rng.poisson(3.0, 2000).astype(float)
    noise = rng.normal(0, 1.5, 2000)
    worse = y + noise
    better = y + 0.97 * noise  # the same errors, 3% smaller: a gain the marginal intervals cannot show
    gap = paired_gap(better, worse, y, seed=0, rounds=500)
    _, rmse_better, _ = error_estimates(better, y, 0, 500)
    _, rmse_worse, _ = error_estimates(worse, y, 0, 500)
    assert rmse_better.high > rmse_worse.low  # marginal intervals overlap
    assert gap.rmse.value == rmse_better.value - rmse_worse.value
    assert gap.rmse.high < 0  # the paired one excludes 0
    assert gap.corr.low > 0
    assert gap.rmse.high - gap.rmse.low < (rmse_worse.high - rmse_worse.low) / 3
