"""Next basket: candidates, the ranking metrics by hand, and held-out metrics against GP-TopFreq on
simulated data the model never saw (repeat and new items reported separately)."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
