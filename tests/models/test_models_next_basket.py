"""Next basket: candidates, the ranking metrics by hand, and held-out metrics against GP-TopFreq on
simulated data the model never saw (repeat and new items reported separately)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.evaluation import evaluate_next_basket, evaluate_next_basket_rolling
from models.features import summarise
from models.metrics import ece, mean_by_group, ranking
from models.next_basket import (
    BASKET_FEATURES,
    basket_features,
    candidates,
    popular_categories,
    top_frequency_scores,
)

from .conftest import Trained
from .test_models_features import HAND, NOW


def test_recall_and_ndcg_by_hand() -> None:
    # Query 0: relevant items at ranks 1 and 3 of 4 candidates; 3 relevant in all (one not a candidate).
    # Query 1: nothing relevant among its candidates, 1 relevant in all.
    query = [0, 0, 0, 0, 1, 1]
    score = [0.9, 0.8, 0.7, 0.1, 0.5, 0.4]
    relevant = [True, False, True, False, False, False]
    hits, recall, ndcg = ranking(query, score, relevant, [3, 1], k=2)
    assert hits.tolist() == [1, 0]
    assert recall.tolist() == [pytest.approx(1 / 3), 0]
    assert ndcg[0] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    _, recall3, ndcg3 = ranking(query, score, relevant, [3, 1], k=3)
    assert recall3[0] == pytest.approx(2 / 3)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg3[0] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    # Ties break on the tiebreak column, then row order.
    hits_tb, _, _ = ranking([0, 0], [1.0, 1.0], [False, True], [1], k=1, tiebreak=[1.0, 0.0])
    assert hits_tb.tolist() == [1]


def test_per_household_then_overall_mean() -> None:
    # Household 7 has two baskets (recall 1 and 0), household 9 one (recall 0.5): (0.5 + 0.5) / 2.
    assert mean_by_group([1.0, 0.0, 0.5], [7, 7, 9]) == pytest.approx(0.5)


def test_ece_by_hand() -> None:
    # Bin [0.2, 0.3): predicted 0.25, observed 0.5; bin [0.9, 1.0): predicted 0.9, observed 1.
    assert ece([0.25, 0.25, 0.9], [1, 0, 1]) == pytest.approx((2 * 0.25 + 0.1) / 3)


def test_candidates_are_personal_categories_then_popular_new_ones() -> None:
    stats = summarise(HAND, until_day=NOW)
    a, b = HAND.households.index("a"), HAND.households.index("b")
    cands = candidates(stats, [a, b], new=2)
    names = [(int(q), HAND.categories[c]) for q, c in zip(cands.query, cands.category, strict=True)]
    # a bought milk and bread; the two most popular are bread and milk (2 households each): nothing new.
    assert sorted(n for q, n in names if q == 0) == ["bread", "milk"]
    # b bought milk; bread is popular and new to it.
    assert sorted(n for q, n in names if q == 1) == ["bread", "milk"]
    assert [HAND.categories[c] for c in popular_categories(stats, 3)] == ["bread", "milk", "eggs"]
    x = basket_features(stats, cands, NOW + 2)
    assert x.shape == (cands.rows, len(BASKET_FEATURES))
    assert np.all(x[:, -1] == 2)  # staleness: two days after the history ends
    score, _ = top_frequency_scores(stats, cands)
    # Personal candidates come most frequent first: a: milk 5, bread 2; b: milk 2, then new bread.
    assert score.tolist() == [5, 2, 2, 0]


def test_held_out_metrics_against_gp_topfreq(trained: Trained) -> None:
    report = trained.report["next_basket"]
    model, baseline = report["model"], report["baseline"]
    assert model["baskets"] == baseline["baskets"] > 1000
    assert model["recall@10"] >= baseline["recall@10"]
    assert model["ndcg@10"] >= baseline["ndcg@10"]
    assert model["ece"] < 0.05
    for side in (model, baseline):
        assert 0 <= side["recall_repeat@10"] <= 1
        assert 0 <= side["recall_new@10"] <= 1
    assert 0 <= report["new_item_share"] < 1


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    """Equal metric dicts, NaN (no new items in any basket) equal to NaN."""
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def test_rolling_protocol_ranks_each_day_from_the_history_before_it(trained: Trained) -> None:
    history, cutoff = trained.history, trained.cutoff
    probability = trained.models.next_basket.probability
    # On the first test day both protocols see exactly the history before the cutoff.
    frozen = evaluate_next_basket(history, cutoff, probability, end_day=cutoff + 1)
    rolling = evaluate_next_basket_rolling(history, cutoff, probability, end_day=cutoff + 1)
    assert _same(rolling["model"], frozen["model"])
    assert _same(rolling["baseline"], frozen["baseline"])
    # A day later, rolling ranks that day's baskets from one more day of history: what the frozen
    # protocol gives when its cutoff is moved to that day.
    rolled = evaluate_next_basket_rolling(history, cutoff + 1, probability, end_day=cutoff + 2)
    moved = evaluate_next_basket(history, cutoff + 1, probability, end_day=cutoff + 2)
    assert _same(rolled["model"], moved["model"])
    assert _same(rolled["baseline"], moved["baseline"])
    # Purchases after a basket's day never reach its ranking: dropping some of them changes nothing.
    future = history.day >= cutoff + 1
    trimmed = history.select(~future | (history.category != history.category[future][0]))
    assert _same(
        evaluate_next_basket_rolling(trimmed, cutoff, probability, end_day=cutoff + 1)["model"],
        rolling["model"],
    )


def test_rolling_report_of_the_trained_models(trained: Trained) -> None:
    report = trained.report["next_basket_rolling"]
    assert report["protocol"] == "rolling"
    # Every test basket of the frozen protocol, plus those of households whose first trip is in the window.
    assert report["model"]["baskets"] >= trained.report["next_basket"]["model"]["baskets"]
    assert report["model"]["recall@10"] >= report["baseline"]["recall@10"] - 0.01
    assert 0 <= report["new_item_share"] < trained.report["next_basket"]["new_item_share"] + 0.01
