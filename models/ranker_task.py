"""`storeedge models train|evaluate --task ranker`: the LambdaRank next-basket ranker alone (issue #16
item 2), trained, exported and evaluated the way `bench/next_basket_ranker.py` does, on any source.

`run_ranker_task(history, cutoff, seed=..., out_dir=...)` trains `models.basket_ranker` on the days
before the cutoff, evaluates the *exported* model through onnxruntime in the frozen and the rolling
protocol next to GP-TopFreq and tuned TIFU-KNN (same run), and with ``out_dir`` writes
``out_dir``/next_basket_ranker/ (model.onnx + card.json; the card carries the feature groups and the
tuned TIFU-KNN parameters the daemon needs, and the held-out metrics). The other models in ``out_dir``
are left alone, like `--task shelf` does: the daemon serves the ranker when that directory is there
(docs/models.md, "Serving in the daemon").
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from models.basket_ranker import RankerParams, train_basket_ranker, write_ranker
from models.evaluation import evaluate_next_basket, evaluate_next_basket_rolling
from models.history import PurchaseHistory
from models.inference import RANKER_DIR, OnnxModel
from models.progress import NO_PROGRESS, Progress


def run_ranker_task(
    history: PurchaseHistory,
    cutoff: int,
    *,
    seed: int,
    source: str,
    out_dir: Path | None = None,
    progress: Progress = NO_PROGRESS,
) -> dict[str, Any]:
    """Train before ``cutoff``, write the export (to ``out_dir``/next_basket_ranker/ or a scratch
    directory) and evaluate what was written after the cutoff; the report's `next_basket_ranker` part
    has the frozen and the rolling protocol, each with GP-TopFreq and TIFU-KNN beside the ranker."""
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    progress.stage("next-basket ranker: tuning TIFU-KNN, collecting rows, fitting")
    ranker = train_basket_ranker(history, cutoff, params=replace(RankerParams(), seed=seed))
    seconds["train"] = round(time.perf_counter() - began, 1)
    with tempfile.TemporaryDirectory(prefix="storeedge-ranker-") as scratch:
        directory = (out_dir or Path(scratch)) / RANKER_DIR
        # Written first (LightGBM and onnxruntime checked on held-out rows), then the written file is
        # evaluated and its metrics added to its card: what is measured is what ships.
        card = write_ranker(directory, ranker, history, cutoff, source=source)
        served = ranker.scorer(OnnxModel(directory, expected_features=ranker.features).run)
        began = time.perf_counter()
        progress.stage("next-basket ranker: evaluating, frozen protocol")
        frozen = evaluate_next_basket(history, cutoff, None, scorer=served)
        progress.stage("next-basket ranker: evaluating, rolling protocol")
        rolling = evaluate_next_basket_rolling(history, cutoff, None, scorer=served)
        seconds["evaluate"] = round(time.perf_counter() - began, 1)
        metrics = {**frozen, "rolling": rolling}
        if out_dir is not None:
            progress.stage("next-basket ranker: exporting")
            card = write_ranker(directory, ranker, history, cutoff, source=source, metrics=metrics)
    report: dict[str, Any] = {
        "next_basket_ranker": {"frozen": frozen, "rolling": rolling, "training": ranker.training},
        "timing_seconds": seconds,
    }
    if out_dir is not None:
        report["written"] = {RANKER_DIR: {"version": card.version, "onnx_bytes": card.onnx_bytes}}
    return report
