"""`served_precision`: scikit-learn and onnxruntime take the same branch for every float32 input."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from models.export import onnx_bytes, served_precision


def _dense_float32_rows(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Features on a grid of nearly adjacent float32 numbers: split midpoints are not float32."""
    rng = np.random.default_rng(0)
    grid = np.float32(1000.0) + (np.arange(4000) * np.float32(6.1e-5)).astype(np.float32)
    x = rng.choice(grid, size=(rows, 2)).astype(np.float32)
    y = (x[:, 0] > np.median(x[:, 0])) ^ (rng.random(rows) < 0.2)
    return x, y


def _largest_gap(model: HistGradientBoostingClassifier, x: np.ndarray) -> float:
    session = ort.InferenceSession(onnx_bytes(model, x.shape[1], classifier=True, doc="test"))
    served = session.run(None, {session.get_inputs()[0].name: x})[1][:, 1]
    return float(np.abs(served - model.predict_proba(x)[:, 1]).max())


def test_rounded_thresholds_make_onnxruntime_agree_with_scikit_learn() -> None:
    x, y = _dense_float32_rows(20_000)
    model = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(x, y)
    assert _largest_gap(model, x) > 1e-3  # the disagreement exists without the rounding
    assert _largest_gap(served_precision(model), x) < 1e-6


def test_rounding_keeps_what_the_model_learned() -> None:
    x, y = _dense_float32_rows(5_000)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y)
    before = model.predict_proba(x)[:, 1]
    after = served_precision(model).predict_proba(x)[:, 1]
    assert np.mean(np.abs(after - before) > 1e-9) < 0.05
    assert after.mean() == pytest.approx(before.mean(), abs=1e-3)
