"""Train, evaluate and export the three models: what `storeedge models train/evaluate` run.

history = load_source("completejourney")
trained = train_models(history, cutoff, TrainOptions(seed=0), shelf_stream)
report = evaluate_models(history, cutoff, trained, shelf_stream)
export_models(trained, report, Path("models/trained"), provenance)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models import shelf_pipeline
from models.cards import ModelCard, write_model
from models.customer_training import write_customer_models
from models.errors import TrainingError
from models.evaluation import evaluate_next_basket, evaluate_next_basket_rolling, evaluate_next_purchase
from models.export import max_abs_difference, onnx_bytes
from models.features import pair_features, summarise
from models.history import PurchaseHistory, day_date
from models.inference import NextBasketModel, NextPurchaseModel, ShelfDepletionModel
from models.next_basket import (
    BASKET_FEATURES,
    NEW_CANDIDATES,
    PERSONAL_CANDIDATES,
    basket_features,
    candidates,
)
from models.next_purchase import BIN_EDGES, HAZARD_FEATURES, MIN_PURCHASES, PROBABILITY_DAYS, hazard_rows
from models.progress import NO_PROGRESS, Progress
from models.shelf import PickStream
from models.shelf_pipeline import (
    ShelfProvenance,
    TrainedShelf,
    export_shelf,
    train_shelf,
)
from models.training import (
    BasketModel,
    BoostingParams,
    HazardModel,
    ShelfModel,
    fit_next_basket,
    fit_next_purchase,
    next_basket_rows,
    next_purchase_rows,
    positive_probability,
)

F32 = npt.NDArray[np.float32]
MINUTES_PER_DAY = 1440
PARITY_ROWS = 4096
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True, slots=True)
class TrainOptions:
    seed: int = 0
    params: BoostingParams = field(default_factory=BoostingParams)
    pairs_per_snapshot: int | None = 20_000
    baskets_per_household: int = 2
    shelf_samples: int = 60_000
    shelf_max_stock: int = 40


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where the training data came from, for the model cards."""

    source: str
    cutoff: int
    seed: int
    data_sha256: str
    shelf_source: str = ""
    shelf_data_sha256: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class TrainedModels:
    next_purchase: HazardModel
    next_basket: BasketModel
    shelf_depletion: ShelfModel | None
    shelf_cutoff_minute: int | None
    rows: dict[str, int]
    seconds: dict[str, float]
    options: TrainOptions


def train_models(
    history: PurchaseHistory,
    cutoff: int,
    options: TrainOptions,
    shelf_stream: PickStream | None = None,
    progress: Progress = NO_PROGRESS,
) -> TrainedModels:
    """Fit the models on everything before ``cutoff`` (the shelf model on the stream before its split).
    ``progress`` hears a stage per training set (a step per snapshot) and per fit."""
    if not history.n_lines or history.first_day >= cutoff:
        raise TrainingError(f"--cutoff {day_date(cutoff)}: no history before it")
    seconds: dict[str, float] = {}
    rows: dict[str, int] = {}
    began = time.perf_counter()
    purchase_set = next_purchase_rows(
        history,
        cutoff,
        max_pairs_per_snapshot=options.pairs_per_snapshot,
        seed=options.seed,
        progress=progress,
    )
    progress.stage("next purchase: fitting")
    hazard = fit_next_purchase(purchase_set, options.params, options.seed)
    seconds["next_purchase"] = time.perf_counter() - began
    rows["next_purchase"] = purchase_set.rows

    began = time.perf_counter()
    basket_set = next_basket_rows(
        history,
        cutoff,
        baskets_per_household=options.baskets_per_household,
        seed=options.seed,
        progress=progress,
    )
    progress.stage("next basket: fitting")
    basket = fit_next_basket(basket_set, options.params, options.seed)
    seconds["next_basket"] = time.perf_counter() - began
    rows["next_basket"] = basket_set.rows

    shelf: ShelfModel | None = None
    split: int | None = None
    if shelf_stream is not None and shelf_stream.minute.size:
        trained_shelf = train_shelf(
            shelf_stream,
            cutoff,
            params=options.params,
            seed=options.seed,
            samples=options.shelf_samples,
            max_stock=options.shelf_max_stock,
            progress=progress,
        )
        shelf, split = trained_shelf.model, trained_shelf.split
        seconds["shelf_depletion"] = trained_shelf.seconds
        rows["shelf_depletion"] = trained_shelf.rows
    return TrainedModels(hazard, basket, shelf, split, rows, seconds, options)


def evaluate_models(
    history: PurchaseHistory,
    cutoff: int,
    trained: TrainedModels,
    shelf_stream: PickStream | None = None,
    progress: Progress = NO_PROGRESS,
) -> dict[str, Any]:
    """Held-out metrics on the days after the cutoff, each model next to its baseline."""
    report: dict[str, Any] = {}
    progress.stage("evaluating next purchase")
    report["next_purchase"] = evaluate_next_purchase(history, cutoff, trained.next_purchase.hazard)
    progress.stage("evaluating next basket")
    report["next_basket"] = evaluate_next_basket(history, cutoff, trained.next_basket.probability)
    progress.stage("evaluating next basket, rolling")
    report["next_basket_rolling"] = evaluate_next_basket_rolling(
        history, cutoff, trained.next_basket.probability
    )
    if (
        trained.shelf_depletion is not None
        and shelf_stream is not None
        and trained.shelf_cutoff_minute is not None
    ):
        progress.stage("evaluating shelf depletion")
        report["shelf_depletion"] = evaluate_shelf(shelf_stream, trained.shelf_cutoff_minute, trained)
    return report


def evaluate_shelf(stream: PickStream, split: int, trained: TrainedModels) -> dict[str, Any]:
    """The shelf model next to its baselines (`models.shelf_evaluation`) on the weeks after the split."""
    return shelf_pipeline.evaluate_shelf(stream, _trained_shelf(trained, split), seed=trained.options.seed)


def _trained_shelf(trained: TrainedModels, split: int) -> TrainedShelf:
    assert trained.shelf_depletion is not None
    return TrainedShelf(
        trained.shelf_depletion,
        split,
        trained.rows.get("shelf_depletion", 0),
        trained.seconds.get("shelf_depletion", 0.0),
        trained.options.shelf_samples,
        trained.options.shelf_max_stock,
    )


# ---------------------------------------------------------------------------------------------------
# Export.


def export_models(
    trained: TrainedModels,
    report: dict[str, Any],
    out_dir: Path,
    provenance: Provenance,
    parity_history: PurchaseHistory,
    shelf_stream: PickStream | None = None,
    progress: Progress = NO_PROGRESS,
) -> dict[str, ModelCard]:
    """Write <out_dir>/<name>/model.onnx + card.json for each trained model, after checking that
    onnxruntime reproduces scikit-learn on held-out rows (rows after the cutoff); ``progress`` hears
    one step per model."""
    progress.stage(
        "exporting models", total=2 if trained.shelf_depletion is None or shelf_stream is None else 3
    )
    cutoff_text = day_date(provenance.cutoff).isoformat()
    params = asdict(trained.options.params)
    cards: dict[str, ModelCard] = {}

    # Held-out rows for the parity check: pairs and candidates as of the cutoff.
    stats = summarise(parity_history, provenance.cutoff)
    pick = np.flatnonzero(stats.n >= MIN_PURCHASES)[:PARITY_ROWS]
    pair_x = pair_features(
        stats, stats.pair_household[pick], stats.pair_category[pick], float(provenance.cutoff)
    )
    households = np.unique(stats.pair_household)[:200]
    basket_x = basket_features(stats, candidates(stats, households), float(provenance.cutoff + 3))[
        :PARITY_ROWS
    ]

    purchase_model = onnx_bytes(
        trained.next_purchase.classifier,
        len(HAZARD_FEATURES),
        classifier=True,
        doc="storeedge next-purchase hazard",
    )
    np_report = {k: v for k, v in report["next_purchase"].items() if k != "per_category"}
    cards["next_purchase"] = _write(
        out_dir / "next_purchase",
        ModelCard(
            name="next_purchase",
            version="-",
            kind="hazard",
            features=HAZARD_FEATURES,
            output="P(bought in the row's day bin | not bought before it); rows are pairs x bins",
            training_data_sha256=provenance.data_sha256,
            source=provenance.source,
            cutoff=cutoff_text,
            seed=provenance.seed,
            params={
                **params,
                "bin_edges_days": list(BIN_EDGES),
                "probability_days": list(PROBABILITY_DAYS),
                "min_purchases": MIN_PURCHASES,
                "training_rows": trained.rows["next_purchase"],
                "iterations": int(trained.next_purchase.classifier.n_iter_),
                "pairs_per_snapshot": trained.options.pairs_per_snapshot,
            },
            metrics=np_report,
        ),
        purchase_model,
        hazard_rows(pair_x),
        positive_probability(trained.next_purchase.classifier, hazard_rows(pair_x)),
        NextPurchaseModel,
    )
    progress.advance()
    basket_model = onnx_bytes(
        trained.next_basket.classifier,
        len(BASKET_FEATURES),
        classifier=True,
        doc="storeedge next-basket ranker",
    )
    cards["next_basket"] = _write(
        out_dir / "next_basket",
        ModelCard(
            name="next_basket",
            version="-",
            kind="classifier",
            features=BASKET_FEATURES,
            output="P(category in the basket of a trip on day now)",
            training_data_sha256=provenance.data_sha256,
            source=provenance.source,
            cutoff=cutoff_text,
            seed=provenance.seed,
            params={
                **params,
                "personal_candidates": PERSONAL_CANDIDATES,
                "new_candidates": NEW_CANDIDATES,
                "training_rows": trained.rows["next_basket"],
                "iterations": int(trained.next_basket.classifier.n_iter_),
                "baskets_per_household": trained.options.baskets_per_household,
            },
            metrics={**report["next_basket"], "rolling": report["next_basket_rolling"]},
        ),
        basket_model,
        basket_x,
        trained.next_basket.probability(basket_x),
        NextBasketModel,
    )
    progress.advance()
    if trained.shelf_depletion is not None and shelf_stream is not None:
        cards["shelf_depletion"] = export_shelf(
            _trained_shelf(trained, trained.shelf_cutoff_minute or 0),
            shelf_stream,
            out_dir / "shelf_depletion",
            report.get("shelf_depletion", {}),
            ShelfProvenance(
                source=provenance.shelf_source or provenance.source,
                data_sha256=provenance.shelf_data_sha256 or provenance.data_sha256,
                cutoff=cutoff_text,
                seed=provenance.seed,
            ),
            params,
        )
        progress.advance()
    # The customer models (closed forms, no ONNX): customers/params.json + segments.json, or why not.
    report["customers"] = write_customer_models(
        out_dir, parity_history, provenance.cutoff,
        source=provenance.source, seed=provenance.seed, data_sha256=provenance.data_sha256,
    )  # fmt: skip
    return cards


def _write(
    directory: Path,
    card: ModelCard,
    model: bytes,
    x: F32,
    expected: npt.NDArray[np.float64],
    loader: type[NextPurchaseModel] | type[NextBasketModel] | type[ShelfDepletionModel],
) -> ModelCard:
    written = write_model(directory, card, model)
    onnx_out = loader(directory).onnx.run(x)
    difference = max_abs_difference(expected, onnx_out)
    if difference > PARITY_TOLERANCE:
        raise TrainingError(
            f"{directory}: onnxruntime differs from scikit-learn by {difference:.2e} on held-out rows"
        )
    return written
