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

from models.cards import ModelCard, write_model
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
from models.shelf import (
    HORIZON_MINUTES,
    SHELF_FEATURES,
    PickStream,
    depletion_from_log_minutes,
    linear_baseline_minutes,
    shelf_errors,
)
from models.training import (
    BasketModel,
    BoostingParams,
    HazardModel,
    ShelfModel,
    fit_next_basket,
    fit_next_purchase,
    fit_shelf,
    next_basket_rows,
    next_purchase_rows,
    positive_probability,
    shelf_rows,
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


def shelf_cutoff_minute(stream: PickStream, cutoff: int) -> int:
    """The shelf split: the household cutoff if the stream spans it with room on both sides, else 3/4
    through the stream."""
    first, last = int(stream.minute.min()), int(stream.minute.max())
    candidate = cutoff * MINUTES_PER_DAY
    room = 8 * MINUTES_PER_DAY + HORIZON_MINUTES
    if first + room <= candidate <= last - room:
        return candidate
    return first + (last - first) * 3 // 4


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
        began = time.perf_counter()
        progress.stage("shelf depletion: training rows")
        split = shelf_cutoff_minute(shelf_stream, cutoff)
        start = int(shelf_stream.minute.min()) + 7 * MINUTES_PER_DAY
        x, minutes = shelf_rows(
            shelf_stream,
            start,
            split - HORIZON_MINUTES,
            samples=options.shelf_samples,
            max_stock=options.shelf_max_stock,
            seed=options.seed,
        )
        progress.stage("shelf depletion: fitting")
        shelf = fit_shelf(x, minutes, options.params, options.seed)
        seconds["shelf_depletion"] = time.perf_counter() - began
        rows["shelf_depletion"] = int(x.shape[0])
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
    assert trained.shelf_depletion is not None
    end = int(stream.minute.max()) - HORIZON_MINUTES
    if end <= split:
        return {"model": {}, "baseline": {}, "note": "no full horizon of picks after the split"}
    x, minutes = shelf_rows(
        stream,
        split,
        end,
        samples=trained.options.shelf_samples // 3,
        max_stock=trained.options.shelf_max_stock,
        seed=trained.options.seed + 1,
    )
    predicted = depletion_from_log_minutes(trained.shelf_depletion.log_minutes(x), x).minutes
    baseline = linear_baseline_minutes(x)
    # Where the last hour had picks, the baseline has a rate to extrapolate (store open, shelf moving).
    active = x[:, SHELF_FEATURES.index("picks_60m")] > 0
    return {
        "model": shelf_errors(predicted, minutes),
        "baseline": shelf_errors(baseline, minutes),
        "active_last_hour": {
            "model": shelf_errors(predicted[active], minutes[active]),
            "baseline": shelf_errors(baseline[active], minutes[active]),
        },
        "empty_within_horizon_share": float(np.mean(minutes < HORIZON_MINUTES)),
    }


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
        regressor = trained.shelf_depletion.regressor
        shelf_model = onnx_bytes(
            regressor, len(SHELF_FEATURES), classifier=False, doc="storeedge shelf depletion"
        )
        split = trained.shelf_cutoff_minute or 0
        x, _ = shelf_rows(shelf_stream, split, split + 1440, samples=2000, max_stock=40, seed=99)
        cards["shelf_depletion"] = _write(
            out_dir / "shelf_depletion",
            ModelCard(
                name="shelf_depletion",
                version="-",
                kind="regressor",
                features=SHELF_FEATURES,
                output="log1p(minutes until the shelf is empty), capped at the horizon",
                training_data_sha256=provenance.shelf_data_sha256 or provenance.data_sha256,
                source=provenance.shelf_source or provenance.source,
                cutoff=cutoff_text,
                seed=provenance.seed,
                params={
                    **params,
                    "horizon_minutes": HORIZON_MINUTES,
                    "split_minute": split,
                    "training_rows": trained.rows["shelf_depletion"],
                    "iterations": int(regressor.n_iter_),
                },
                metrics=report.get("shelf_depletion", {}),
            ),
            shelf_model,
            x,
            trained.shelf_depletion.log_minutes(x),
            ShelfDepletionModel,
        )
        progress.advance()
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
