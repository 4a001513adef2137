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


def max_abs_difference(expected: npt.NDArray[np.float64], actual: npt.NDArray[np.float64]) -> float:
    return float(np.max(np.abs(expected - actual))) if expected.size else 0.0
