"""The shelf-depletion part of `models.pipeline`: train the shelf model on a pick stream before its split,
evaluate it after the split, export it. `models.pipeline` runs it after the household models;
`storeedge models train|evaluate --task shelf` runs it alone (the shipped shelf model is retrained
without touching the others):

trained = train_shelf(stream, cutoff, params=BoostingParams(), seed=0)
report = evaluate_shelf(stream, trained, seed=0)
export_shelf(trained, stream, Path("models/trained/shelf_depletion"), report, provenance...)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.cards import ModelCard, write_model
from models.errors import TrainingError
from models.export import max_abs_difference, onnx_bytes
from models.inference import ShelfDepletionModel
from models.progress import NO_PROGRESS, Progress
from models.shelf import HORIZON_MINUTES, SHELF_FEATURE_SET, SHELF_FEATURES, PickStream
from models.shelf_evaluation import evaluate_shelf_depletion
from models.training import BoostingParams, ShelfModel, fit_shelf, shelf_rows

MINUTES_PER_DAY = 1440
PARITY_TOLERANCE = 1e-4
SHELF_SAMPLES = 60_000  # training samples; the evaluation takes a third as many after the split
SHELF_MAX_STOCK = 40


@dataclass(frozen=True, slots=True, eq=False)
class TrainedShelf:
    model: ShelfModel
    split: int  # minute since 1970 (store-local): trained before it (truth included), tested after it
    rows: int
    seconds: float
    samples: int
    max_stock: int


def shelf_cutoff_minute(stream: PickStream, cutoff: int) -> int:
    """The shelf split: the household cutoff if the stream spans it with room on both sides, else 3/4
    through the stream."""
    first, last = int(stream.minute.min()), int(stream.minute.max())
    candidate = cutoff * MINUTES_PER_DAY
    room = 8 * MINUTES_PER_DAY + HORIZON_MINUTES
    if first + room <= candidate <= last - room:
        return candidate
    return first + (last - first) * 3 // 4


def train_shelf(
    stream: PickStream,
    cutoff: int,
    *,
    params: BoostingParams,
    seed: int,
    samples: int = SHELF_SAMPLES,
    max_stock: int = SHELF_MAX_STOCK,
    progress: Progress = NO_PROGRESS,
) -> TrainedShelf:
    """Fit on random (shelf, time, stock) from a week into the stream until a horizon before the split
    (their truth stays before it)."""
    if not stream.minute.size:
        raise TrainingError("shelf depletion: the pick stream is empty")
    began = time.perf_counter()
    progress.stage("shelf depletion: training rows")
    split = shelf_cutoff_minute(stream, cutoff)
    start = int(stream.minute.min()) + 7 * MINUTES_PER_DAY
    x, minutes = shelf_rows(
        stream, start, split - HORIZON_MINUTES, samples=samples, max_stock=max_stock, seed=seed
    )
    progress.stage("shelf depletion: fitting")
    model = fit_shelf(x, minutes, params, seed)
    return TrainedShelf(model, split, int(x.shape[0]), time.perf_counter() - began, samples, max_stock)


def evaluate_shelf(stream: PickStream, trained: TrainedShelf, *, seed: int) -> dict[str, Any]:
    """The model next to its baselines on the weeks after the split (`models.shelf_evaluation`)."""
    return evaluate_shelf_depletion(
        stream,
        trained.split,
        trained.model.log_minutes,
        samples=trained.samples // 3,
        max_stock=trained.max_stock,
        seed=seed + 1,
    )


@dataclass(frozen=True, slots=True)
class ShelfProvenance:
    """What the card says about the training data."""

    source: str
    data_sha256: str
    cutoff: str  # ISO date
    seed: int


def export_shelf(
    trained: TrainedShelf,
    stream: PickStream,
    directory: Path,
    report: dict[str, Any],
    provenance: ShelfProvenance,
    params: dict[str, object],
) -> ModelCard:
    """Write ``directory``/model.onnx + card.json, after checking that onnxruntime reproduces
    scikit-learn on a day of held-out rows (after the split)."""
    regressor = trained.model.regressor
    model = onnx_bytes(regressor, len(SHELF_FEATURES), classifier=False, doc="storeedge shelf depletion")
    x, _ = shelf_rows(
        stream, trained.split, trained.split + MINUTES_PER_DAY, samples=2000, max_stock=40, seed=99
    )
    card = write_model(
        directory,
        ModelCard(
            name="shelf_depletion",
            version="-",
            kind="regressor",
            features=SHELF_FEATURES,
            output="log1p(minutes until the shelf is empty), capped at the horizon",
            training_data_sha256=provenance.data_sha256,
            source=provenance.source,
            cutoff=provenance.cutoff,
            seed=provenance.seed,
            params={
                **params,
                "horizon_minutes": HORIZON_MINUTES,
                "feature_set": SHELF_FEATURE_SET,  # models.shelf.SHELF_FEATURE_SETS
                "country": stream.country,  # whose public holidays the holiday features are
                "split_minute": trained.split,
                "training_rows": trained.rows,
                "iterations": int(regressor.n_iter_),
            },
            metrics=report,
        ),
        model,
    )
    difference = max_abs_difference(trained.model.log_minutes(x), ShelfDepletionModel(directory).onnx.run(x))
    if difference > PARITY_TOLERANCE:
        raise TrainingError(
            f"{directory}: onnxruntime differs from scikit-learn by {difference:.2e} on held-out rows"
        )
    return card
