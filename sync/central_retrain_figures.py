"""What a retrain at central measures of a model set, and the rule that calls a candidate worse
(`sync.central_retrain`, docs/experiments.md "Retraining at central")."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from models.evaluation import evaluate_next_basket, evaluate_next_basket_rolling, evaluate_next_purchase
from models.history import PurchaseHistory


@dataclass(frozen=True, slots=True)
class ListOrder:
    """The next-basket figures (frozen and rolling protocols) of what orders a set's lists."""

    recall_at_10: float
    ndcg_at_10: float
    rolling_recall_at_10: float
    version: str  # the ranker's card version; "": the pointwise next-basket model


class ModelFigures(msgspec.Struct, frozen=True, kw_only=True):
    """One model set on the weeks after the cutoff (`models evaluate`'s protocols); the first two decide."""

    recall_at_10: float  # next basket, frozen protocol (primary)
    brier_7d: float  # next purchase, P(T < 7 days) (primary)
    ndcg_at_10: float
    rolling_recall_at_10: float  # next basket as served (history rebuilt every test day)
    brier_14d: float
    log_loss_7d: float
    mae_days: float
    ece: float
    next_purchase_version: str = ""
    next_basket_version: str = ""
    # The next-basket ranker that orders the lists (its figures are the next-basket ones above); "": the
    # pointwise next-basket model orders them (`sync.central_retrain_ranker`).
    next_basket_ranker_version: str = ""


def evaluate_set(
    history: PurchaseHistory, cutoff_day: int, hazard: Callable[[Any], Any], probability: Callable[[Any], Any]
) -> dict[str, Any]:
    """The next-purchase and the pointwise next-basket model after ``cutoff_day``."""
    return {
        "next_purchase": evaluate_next_purchase(history, cutoff_day, hazard),
        "next_basket": evaluate_next_basket(history, cutoff_day, probability),
        "next_basket_rolling": evaluate_next_basket_rolling(history, cutoff_day, probability),
    }


def list_order(frozen: dict[str, Any], rolling: dict[str, Any], version: str) -> ListOrder:
    """`ListOrder` from `models.evaluation`'s next-basket reports (their ``model`` parts)."""
    return ListOrder(
        recall_at_10=round(float(frozen["model"]["recall@10"]), 4),
        ndcg_at_10=round(float(frozen["model"]["ndcg@10"]), 4),
        rolling_recall_at_10=round(float(rolling["model"]["recall@10"]), 4),
        version=version,
    )


def set_figures(
    report: dict[str, Any], purchase_version: str, basket_version: str, ranker: ListOrder | None
) -> ModelFigures:
    """A set's figures: next purchase from ``report`` (`evaluate_set`), next basket from ``ranker`` when
    it orders the lists, else from the pointwise model in ``report``."""
    purchase = report["next_purchase"]["model"]
    lists = ranker or list_order(report["next_basket"], report["next_basket_rolling"], "")
    return ModelFigures(
        recall_at_10=lists.recall_at_10,
        brier_7d=round(float(purchase["brier_7d"]), 4),
        ndcg_at_10=lists.ndcg_at_10,
        rolling_recall_at_10=lists.rolling_recall_at_10,
        brier_14d=round(float(purchase["brier_14d"]), 4),
        log_loss_7d=round(float(purchase["log_loss_7d"]), 4),
        mae_days=round(float(purchase["mae_days"]), 2),
        ece=round(float(purchase["ece"]), 4),
        next_purchase_version=purchase_version,
        next_basket_version=basket_version,
        next_basket_ranker_version=lists.version,
    )


def worse_than(
    candidate: ModelFigures, current: ModelFigures, recall_tolerance: float, brier_tolerance: float
) -> list[str]:
    """What makes the candidate worse, in words (empty: not worse). A measure that could not be computed
    (no test baskets, no pairs) counts as worse: nothing is promoted on no evidence."""
    found = []
    for name, ours, theirs, sign, tolerance in (
        ("next-basket Recall@10", candidate.recall_at_10, current.recall_at_10, 1, recall_tolerance),
        ("next-purchase Brier 7 d", candidate.brier_7d, current.brier_7d, -1, brier_tolerance),
    ):
        if math.isnan(ours) or math.isnan(theirs):
            found.append(f"{name} could not be measured on the weeks after the cutoff")
        elif sign * (ours - theirs) < -tolerance:
            found.append(f"{name} {ours:.4f} vs {theirs:.4f} (tolerance {tolerance})")
    return found
