"""Export fitted scikit-learn models to ONNX with skl2onnx (training extra).

Every exported model has one float32 input named `features` (rows x feature columns). Classifiers
output `probabilities` (rows x 2, no ZipMap), regressors `variable` (rows x 1). skl2onnx's
HistGradientBoosting converter needs protobuf < 7.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
from skl2onnx import to_onnx  # type: ignore[import-untyped,unused-ignore]
from skl2onnx.common.data_types import FloatTensorType  # type: ignore[import-untyped,unused-ignore]

from models.cards import INPUT_NAME

# ai.onnx.ml 3 is what onnxruntime's tree ensembles have supported longest.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def onnx_bytes(model: Any, n_features: int, *, classifier: bool, doc: str) -> bytes:
    """The serialised ONNX graph of a fitted HistGradientBoosting model."""
    options = {id(model): {"zipmap": False}} if classifier else None
    with warnings.catch_warnings():
        # onnx warns about booleans in int attributes written by skl2onnx's tree converter.
        warnings.simplefilter("ignore", DeprecationWarning)
        onx = to_onnx(
            model,
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            options=options,
            target_opset=TARGET_OPSET,
        )
    onx.doc_string = doc
    # No producer version or timestamps in the graph: the same fit exports to the same bytes.
    data: bytes = onx.SerializeToString()
    return data


def served_precision(model: Any) -> Any:
    """Round a fitted HistGradientBoosting model's split thresholds to float32, in place: the precision
    onnxruntime's tree ensemble compares them at. scikit-learn splits halfway between two bin edges in
    float64; when that midpoint is not a float32 number, it rounds onto one of the edges in the exported
    graph, and a row holding exactly that value goes the other way in onnxruntime than in scikit-learn
    (seen as differences up to 0.37 in P on some simulated chains). Rounded first, both take the same
    branch for every float32 input, and the model evaluated is exactly the model served."""
    for iteration in model._predictors:  # the fitted trees: scikit-learn has no public handle on them
        for predictor in iteration:
            nodes = predictor.nodes
            nodes["num_threshold"] = nodes["num_threshold"].astype(np.float32).astype(np.float64)
    return model


def max_abs_difference(expected: npt.NDArray[np.float64], actual: npt.NDArray[np.float64]) -> float:
    return float(np.max(np.abs(expected - actual))) if expected.size else 0.0
