"""Scoring with the exported models: onnxruntime only (the daemon's runtime dependency), numpy in and out.

Each model class loads `model.onnx` + `card.json` from a directory once, checks them against each other
and against the feature columns this code builds, and creates one `onnxruntime.InferenceSession` (CPU
provider, 1-2 intra-op threads, sequential execution). `score(...)` is a pure function of its numpy
input, safe to call from an executor thread (onnxruntime sessions allow concurrent `run`).

    models = load_models()                               # the shipped models/trained/*
    x = pair_features(stats, households, categories, today)
    when = models.next_purchase.score(x)                 # NextPurchaseScores
    p = models.next_basket.score(basket_features(stats, cands, today))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from models.basket_baselines import TifuParams
from models.cards import CARD_FILE, INPUT_NAME, MODEL_FILE, ModelCard, read_card, read_model
from models.errors import ModelLoadError
from models.features import FEATURE_NAMES
from models.next_basket import BASKET_FEATURES
from models.next_purchase import HAZARD_FEATURES, N_BINS, NextPurchaseScores, hazard_rows, scores_from_hazard
from models.ranker_features import GROUP_FEATURES, feature_names
from models.shelf import SHELF_FEATURE_SETS, SHELF_FEATURES, ShelfDepletionScores, depletion_from_log_minutes

TRAINED_DIR = Path(__file__).resolve().parent / "trained"
RANKER_DIR = "next_basket_ranker"  # <model set>/next_basket_ranker/: optional (`models.ranker_task`)
RUN_CHUNK = 262_144

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


class OnnxModel:
    """One model directory: its card and an onnxruntime session."""

    def __init__(self, directory: Path, *, expected_features: tuple[str, ...], threads: int = 1) -> None:
        if not 1 <= threads <= 8:
            raise ValueError(f"threads: must be within 1..8, got {threads}")
        self.directory = directory
        self.card: ModelCard
        self.card, model = read_model(directory)
        if self.card.features != expected_features:
            missing = [f for f in expected_features if f not in self.card.features]
            extra = [f for f in self.card.features if f not in expected_features]
            raise ModelLoadError(
                f"{directory / 'card.json'}: features: the model expects other columns than this code builds "
                f"(missing {missing}, unexpected {extra}, or another order)"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self._session: Any = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"{directory / 'model.onnx'}: onnxruntime cannot load it: {exc}") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or inputs[0].shape[1] != len(expected_features):
            raise ModelLoadError(
                f"{directory / 'model.onnx'}: expected one input {INPUT_NAME!r} with {len(expected_features)} columns"
            )
        outputs = [o.name for o in self._session.get_outputs()]
        self._output = "probabilities" if "probabilities" in outputs else outputs[0]

    def run(self, x: F32) -> F64:
        """The model's output per row: P(label 1) for classifiers, the value for regressors."""
        if x.ndim != 2 or x.shape[1] != len(self.card.features):
            raise ValueError(
                f"{self.card.name}: expected rows x {len(self.card.features)} features, got {x.shape}"
            )
        out = np.empty(x.shape[0], dtype=np.float64)
        for start in range(0, x.shape[0], RUN_CHUNK):
            chunk = np.ascontiguousarray(x[start : start + RUN_CHUNK], dtype=np.float32)
            (result,) = self._session.run([self._output], {INPUT_NAME: chunk})
            values = np.asarray(result, dtype=np.float64)
            out[start : start + RUN_CHUNK] = (
                values[:, 1] if values.ndim == 2 and values.shape[1] == 2 else values.reshape(-1)
            )
        return out


class NextPurchaseModel:
    """When each pair is bought next: `score(pair features) -> NextPurchaseScores`."""

    name = "next_purchase"

    def __init__(self, directory: Path, *, threads: int = 1) -> None:
        self.onnx = OnnxModel(directory, expected_features=HAZARD_FEATURES, threads=threads)

    @property
    def card(self) -> ModelCard:
        return self.onnx.card

    def hazard(self, features: F32) -> F64:
        """Pairs x bins hazard from pair feature rows (`models.features.FEATURE_NAMES`)."""
        _check_width(features, len(FEATURE_NAMES), self.name)
        out = np.empty((features.shape[0], N_BINS))
        step = RUN_CHUNK // N_BINS
        for start in range(0, features.shape[0], step):
            chunk = features[start : start + step]
            out[start : start + step] = self.onnx.run(hazard_rows(chunk)).reshape(-1, N_BINS)
        return out

    def score(self, features: F32) -> NextPurchaseScores:
        return scores_from_hazard(self.hazard(features), features)


@dataclass(frozen=True, slots=True, eq=False)
class NextBasketScores:
    """P(category in the next trip's basket) per candidate row."""

    probability: F64


class NextBasketModel:
    """Which candidates are on the next trip: `score(basket features) -> NextBasketScores`."""

    name = "next_basket"

    def __init__(self, directory: Path, *, threads: int = 1) -> None:
        self.onnx = OnnxModel(directory, expected_features=BASKET_FEATURES, threads=threads)

    @property
    def card(self) -> ModelCard:
        return self.onnx.card

    def score(self, features: F32) -> NextBasketScores:
        _check_width(features, len(BASKET_FEATURES), self.name)
        return NextBasketScores(self.onnx.run(features))


class NextBasketRankerModel:
    """The LambdaRank next-basket ranker (`models.basket_ranker`): `score(ranker features) -> scores` that
    only order a household's candidates (higher first; no probabilities). Its card's params carry the
    feature groups (`groups`, of `models.ranker_features`) and the tuned TIFU-KNN parameters (`tifu_knn`)
    its ``tifu`` columns are computed with."""

    name = "next_basket_ranker"

    def __init__(self, directory: Path, *, threads: int = 1) -> None:
        card = read_card(directory / CARD_FILE)
        groups, tifu = card.params.get("groups"), card.params.get("tifu_knn")
        if not isinstance(groups, list) or not groups or any(g not in GROUP_FEATURES for g in groups):
            raise ModelLoadError(
                f"{directory / CARD_FILE}: params.groups: expected a list of {sorted(GROUP_FEATURES)}"
            )
        try:
            params = TifuParams(**tifu) if isinstance(tifu, dict) else None
        except TypeError:
            params = None
        if params is None or params.grouping not in ("size", "count") or params.group_size < 1:
            raise ModelLoadError(f"{directory / CARD_FILE}: params.tifu_knn: not TIFU-KNN parameters")
        self.tifu = params
        self.groups: tuple[str, ...] = tuple(groups)
        self.onnx = OnnxModel(directory, expected_features=feature_names(self.groups), threads=threads)

    @property
    def card(self) -> ModelCard:
        return self.onnx.card

    def score(self, features: F32) -> F64:
        _check_width(features, len(self.onnx.card.features), self.name)
        return self.onnx.run(features)


class ShelfDepletionModel:
    """Minutes until a shelf is empty: `score(shelf features) -> ShelfDepletionScores`.

    ``score`` takes all of `SHELF_FEATURES`; the model gets the columns its card lists, one of
    `SHELF_FEATURE_SETS` (a model trained before the holiday features still loads and scores)."""

    name = "shelf_depletion"

    def __init__(self, directory: Path, *, threads: int = 1) -> None:
        trained_with = read_card(directory / CARD_FILE).features
        known = trained_with in SHELF_FEATURE_SETS.values()
        self.onnx = OnnxModel(
            directory, expected_features=trained_with if known else SHELF_FEATURES, threads=threads
        )
        self._columns = [SHELF_FEATURES.index(name) for name in self.onnx.card.features]

    @property
    def card(self) -> ModelCard:
        return self.onnx.card

    def score(self, features: F32) -> ShelfDepletionScores:
        _check_width(features, len(SHELF_FEATURES), self.name)
        own = features if len(self._columns) == len(SHELF_FEATURES) else features[:, self._columns]
        return depletion_from_log_minutes(self.onnx.run(own), features)


@dataclass(frozen=True, slots=True)
class StoreModels:
    next_purchase: NextPurchaseModel
    next_basket: NextBasketModel
    shelf_depletion: ShelfDepletionModel
    # Optional: when present, it orders the next-basket candidates (the pointwise model still gives P).
    next_basket_ranker: NextBasketRankerModel | None = None


def load_models(directory: Path = TRAINED_DIR, *, threads: int = 1) -> StoreModels:
    """The three models from ``directory``/<name>/ (default: the ones shipped in the package), and the
    next-basket ranker from ``directory``/next_basket_ranker/ when that directory has a model."""
    ranker = directory / RANKER_DIR
    return StoreModels(
        NextPurchaseModel(directory / "next_purchase", threads=threads),
        NextBasketModel(directory / "next_basket", threads=threads),
        ShelfDepletionModel(directory / "shelf_depletion", threads=threads),
        NextBasketRankerModel(ranker, threads=threads) if (ranker / MODEL_FILE).is_file() else None,
    )


def _check_width(features: F32, width: int, name: str) -> None:
    if features.ndim != 2 or features.shape[1] != width:
        raise ValueError(f"{name}: expected rows x {width} features, got shape {features.shape}")
