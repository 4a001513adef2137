"""Held-out evaluation on a temporal split, model and baseline side by side in the same run.

Everything is computed from the history before the cutoff; the truth is what happened from the cutoff
to the end of the data (the test window). Nothing from the test window feeds a prediction.

Next purchase (pairs with at least 3 purchase days before the cutoff, so the median-interval baseline
is defined): T = days from the cutoff to the pair's first purchase in the test window. Day errors
(MAE, share within +-7 / +-2 / +-1 days) are over the pairs bought in the window; pairs never bought
again in it are censored and count only in the calibration of P(T < 7) and P(T < 14) (ECE, 10 bins),
which is over all pairs, as are the Brier score and the log loss (probabilities clipped to
[1e-6, 1 - 1e-6]) of P(T < 7) and P(T < 14). The point baseline ("baseline") predicts max(0, median gap -
days since the last purchase); its "probability" is the indicator that its predicted day falls before 7
(14) days. The probabilistic baseline ("baseline_empirical", probabilities only) is the pair's own
empirical distribution of gaps conditioned on the days since its last purchase
(`models.next_purchase.empirical_interval_probability`); "improvement_over_empirical" is
(baseline - model) / baseline of the model's Brier score and log loss, 7 and 14 days.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from models.basket_baselines import tifu_knn_ranker, tuned_tifu
from models.basket_protocol import frozen_metrics, rolling_metrics
from models.features import PairStats, pair_features, summarise
from models.history import PurchaseHistory
from models.metrics import brier, day_errors, ece, log_loss, mean_by_group, ranking
from models.next_basket import (
    TOP_K,
    Candidates,
    basket_features,
    top_frequency_probability,
    top_frequency_scores,
)
from models.next_purchase import (
    empirical_interval_probability,
    median_interval_days,
    scores_from_hazard,
)
from models.targets import first_purchase_days

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
HazardFn = Callable[[F32], F64]
ProbabilityFn = Callable[[F32], F64]
# A ranker that builds its own features (`models.basket_ranker`): scores of candidate rows ranked from
# `PairStats` for trips on one day per query; higher first, not probabilities (no ECE for it).
BasketScorer = Callable[[PurchaseHistory, PairStats, Candidates, npt.NDArray[np.int64]], F64]
EVAL_MIN_PURCHASES = 3
PER_CATEGORY_MIN_PAIRS = 30


def _probability_metrics(p7: F64, p14: F64, t: npt.NDArray[np.int64]) -> dict[str, float]:
    bought = t >= 0
    e7 = ece(p7, bought & (t < 7))
    e14 = ece(p14, bought & (t < 14))
    y7, y14 = bought & (t < 7), bought & (t < 14)
    return {
        "ece": max(e7, e14),
        "ece_7d": e7,
        "ece_14d": e14,
        "brier_7d": brier(p7, y7),
        "brier_14d": brier(p14, y14),
        "log_loss_7d": log_loss(p7, y7),
        "log_loss_14d": log_loss(p14, y14),
    }


def _relative_improvement(model: dict[str, float], baseline: dict[str, float]) -> dict[str, float]:
    """(baseline - model) / baseline per probability score: > 0 when the model is better."""
    keys = ("brier_7d", "brier_14d", "log_loss_7d", "log_loss_14d")
    return {
        key: (baseline[key] - model[key]) / baseline[key] if baseline[key] > 0 else float("nan")
        for key in keys
    }


def evaluate_next_purchase(
    history: PurchaseHistory, cutoff: int, hazard: HazardFn, *, end_day: int | None = None
) -> dict[str, Any]:
    """Model vs median-interval baseline, overall and per category."""
    end = (history.last_day + 1) if end_day is None else end_day
    stats = summarise(history, cutoff)
    pairs = np.flatnonzero(stats.n >= EVAL_MIN_PURCHASES)
    h, c = stats.pair_household[pairs], stats.pair_category[pairs]
    x = pair_features(stats, h, c, float(cutoff))
    t = first_purchase_days(history, h, c, cutoff, end)
    scores = scores_from_hazard(hazard(x), x)
    baseline = median_interval_days(x)
    bought = t >= 0

    def summary(predicted: F64, p7: F64, p14: F64, rows: npt.NDArray[np.bool_]) -> dict[str, float]:
        return {
            **day_errors(predicted[rows & bought], t[rows & bought]),
            **_probability_metrics(p7[rows], p14[rows], t[rows]),
            "pairs": int(rows.sum()),
            "bought": int((rows & bought).sum()),
        }

    everything = np.ones(t.shape, dtype=bool)
    model_p7, model_p14 = scores.p_within_days(7), scores.p_within_days(14)
    base_p7, base_p14 = (baseline < 7).astype(np.float64), (baseline < 14).astype(np.float64)
    empirical_p7 = empirical_interval_probability(history, h, c, cutoff, 7)
    empirical_p14 = empirical_interval_probability(history, h, c, cutoff, 14)
    model_probability = _probability_metrics(model_p7, model_p14, t)
    empirical = _probability_metrics(empirical_p7, empirical_p14, t) | {"pairs": int(t.size)}
    per_category: dict[str, Any] = {}
    for code in np.unique(c):
        rows = c == code
        if (rows & bought).sum() >= PER_CATEGORY_MIN_PAIRS:
            per_category[stats.categories[int(code)]] = {
                "model": summary(scores.expected_days, model_p7, model_p14, rows),
                "baseline": summary(baseline, base_p7, base_p14, rows),
            }
    return {
        "model_best_week": summary(scores.best_week_days, model_p7, model_p14, everything),
        "model": summary(scores.expected_days, model_p7, model_p14, everything)
        | {
            "mean_confidence": float(scores.confidence.mean()),
            "p_horizon_mean": float(scores.p_horizon.mean()),
        },
        "baseline": summary(baseline, base_p7, base_p14, everything),
        "baseline_empirical": empirical,
        "improvement_over_empirical": _relative_improvement(model_probability, empirical),
        "censored_share": float(1 - bought.mean()) if t.size else float("nan"),
        "test_days": int(end - cutoff),
        "confidence_hit_rate": float(np.mean(bought & (np.abs(scores.expected_days - t) <= 7)))
        if t.size
        else float("nan"),
        "per_category": per_category,
    }


def evaluate_next_basket(
    history: PurchaseHistory,
    cutoff: int,
    probability: ProbabilityFn | None,
    *,
    end_day: int | None = None,
    k: int = TOP_K,
    scorer: BasketScorer | None = None,
) -> dict[str, Any]:
    """Model vs GP-TopFreq on every basket of the test window (households with history before the
    cutoff), the *frozen* protocol: features and frequencies from the history before the cutoff, however
    late in the window the basket is. Recall@k and NDCG@k per basket, averaged per household, then over
    households; the same for the basket's repeat items (bought before the cutoff) and new items
    separately. Next to them, TIFU-KNN tuned on the days before the cutoff (`_tifu_knn`). The model is
    ``probability`` of `basket_features`, or a ``scorer`` building its own (exactly one of the two)."""
    end = (history.last_day + 1) if end_day is None else end_day
    stats = summarise(history, cutoff)
    model = _model_scores(probability, scorer)
    report = _basket_report(
        [_basket_part(history, stats, cutoff, end, model, k)], k, end - cutoff, calibrated=scorer is None
    )
    return report | _tifu_knn(history, cutoff, end, k, rolling=False)


def evaluate_next_basket_rolling(
    history: PurchaseHistory,
    cutoff: int,
    probability: ProbabilityFn | None,
    *,
    end_day: int | None = None,
    k: int = TOP_K,
    scorer: BasketScorer | None = None,
) -> dict[str, Any]:
    """The same baskets, model and metrics as `evaluate_next_basket`, in the *rolling* protocol: each day's
    baskets are ranked from the history before that day (the daemon rebuilds features daily and rescores
    a household after every purchase), for the model and GP-TopFreq alike. The model is still the one
    trained before the cutoff; repeat items are those bought before the basket's day."""
    end = (history.last_day + 1) if end_day is None else end_day
    model = _model_scores(probability, scorer)
    parts = [
        _basket_part(history, summarise(history, day), day, day + 1, model, k) for day in range(cutoff, end)
    ]
    report = _basket_report(parts, k, end - cutoff, calibrated=scorer is None) | {"protocol": "rolling"}
    return report | _tifu_knn(history, cutoff, end, k, rolling=True)


def _tifu_knn(history: PurchaseHistory, cutoff: int, end: int, k: int, *, rolling: bool) -> dict[str, Any]:
    """TIFU-KNN (`models.basket_baselines`), tuned on a validation window before the cutoff (the same
    parameters in both protocols), on the same baskets as the model: ``baseline_tifu_knn`` (no ECE: its
    scores are not probabilities) and ``tifu_knn_tuning`` (the parameters and their validation recall)."""
    tuning = tuned_tifu(history, cutoff, end, k=k)
    measure = rolling_metrics if rolling else frozen_metrics
    metrics = measure(history, cutoff, end, tifu_knn_ranker(tuning.params, k))
    return {"baseline_tifu_knn": metrics.report(k), "tifu_knn_tuning": tuning.report(k)}


def _model_scores(probability: ProbabilityFn | None, scorer: BasketScorer | None) -> BasketScorer:
    """One scorer for both kinds of model: a probability model reads `basket_features`."""
    if (probability is None) == (scorer is None):
        raise ValueError("evaluate_next_basket: give exactly one of probability and scorer")
    if scorer is not None:
        return scorer
    assert probability is not None
    return lambda _history, stats, cands, day: probability(
        basket_features(stats, cands, day.astype(np.float64))
    )


def _basket_part(
    history: PurchaseHistory, stats: PairStats, start: int, end: int, model: BasketScorer, k: int
) -> dict[str, npt.NDArray[Any]]:
    """Per basket of [start, end) ranked from ``stats``: its household, the model's and the baseline's
    recall, NDCG and repeat/new recall; per candidate row the probabilities and labels (for the ECE)."""
    from models.training import basket_queries  # noqa: PLC0415  (training code: sklearn only when evaluating)

    queries = basket_queries(history, stats, start, end)
    cands, label, n_relevant = queries.candidates, queries.label, queries.n_relevant
    model_p = model(history, stats, cands, queries.day)
    base_score, base_tiebreak = top_frequency_scores(stats, cands)
    # Repeat items: categories the household bought before ``stats.until_day``; new items: the others.
    repeat_row = stats.pair_index(cands.household, cands.category) >= 0
    n_repeat = queries.n_repeat.astype(np.float64)
    n_new = n_relevant - n_repeat

    def ranked(side: str, score: F64, tiebreak: F64) -> dict[str, F64]:
        _, recall, ndcg = ranking(cands.query, score, label, n_relevant, k, tiebreak)
        hits_repeat, _, _ = ranking(cands.query, score, label & repeat_row, n_repeat, k, tiebreak)
        hits_new, _, _ = ranking(cands.query, score, label & ~repeat_row, n_new, k, tiebreak)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall_repeat = np.where(n_repeat > 0, hits_repeat / n_repeat, np.nan)
            recall_new = np.where(n_new > 0, hits_new / n_new, np.nan)
        return {
            f"{side}_recall": recall,
            f"{side}_ndcg": ndcg,
            f"{side}_recall_repeat": recall_repeat,
            f"{side}_recall_new": recall_new,
        }

    return {
        "household": queries.household,
        "n_relevant": n_relevant.astype(np.float64),
        "n_new": n_new,
        "label": label,
        **ranked("model", model_p, -stats.cat_households[cands.category].astype(np.float64)),
        **ranked("baseline", base_score, base_tiebreak),
        "model_p": model_p,
        "baseline_p": top_frequency_probability(stats, cands),
    }


def _basket_report(
    parts: list[dict[str, npt.NDArray[Any]]], k: int, test_days: int, *, calibrated: bool = True
) -> dict[str, Any]:
    def joined(key: str) -> npt.NDArray[Any]:
        return np.concatenate([part[key] for part in parts]) if parts else np.zeros(0)

    household = joined("household").astype(np.int64)
    label = joined("label").astype(bool)

    def summary(side: str) -> dict[str, float]:
        return {
            f"recall@{k}": mean_by_group(joined(f"{side}_recall"), household),
            f"ndcg@{k}": mean_by_group(joined(f"{side}_ndcg"), household),
            f"recall_repeat@{k}": mean_by_group(joined(f"{side}_recall_repeat"), household),
            f"recall_new@{k}": mean_by_group(joined(f"{side}_recall_new"), household),
            # A scorer's scores are no probabilities: no ECE for them.
            "ece": ece(joined(f"{side}_p"), label) if side == "baseline" or calibrated else float("nan"),
            "baskets": int(household.size),
            "households": int(np.unique(household).size),
        }

    return {
        "model": summary("model"),
        "baseline": summary("baseline"),
        "test_days": int(test_days),
        "new_item_share": float(joined("n_new").sum() / max(1.0, joined("n_relevant").sum())),
    }
