"""Probability scores by hand (and against scikit-learn's when it is installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.metrics import brier, log_loss


def test_brier_by_hand() -> None:
    # (0.9 - 1)^2 + (0.2 - 0)^2 + (0.6 - 0)^2 + (1 - 1)^2 = 0.01 + 0.04 + 0.36 + 0 = 0.41; / 4
    assert brier([0.9, 0.2, 0.6, 1.0], [1, 0, 0, 1]) == pytest.approx(0.1025)
    assert math.isnan(brier([], []))


def test_log_loss_by_hand_and_clipped() -> None:
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.4)) / 3
    assert log_loss([0.9, 0.2, 0.6], [1, 0, 0]) == pytest.approx(expected)
    # A confident miss costs -ln(1e-6), not infinity; a confident hit costs -ln(1 - 1e-6).
    assert log_loss([0.0], [1]) == pytest.approx(-math.log(1e-6))
    assert log_loss([1.0], [1]) == pytest.approx(-math.log(1 - 1e-6))
    assert math.isnan(log_loss([], []))


def test_scores_match_scikit_learn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 500)
    y = rng.uniform(0, 1, 500) < p
    assert brier(p, y) == pytest.approx(sklearn_metrics.brier_score_loss(y, p))
    assert log_loss(p, y) == pytest.approx(sklearn_metrics.log_loss(y, p))
