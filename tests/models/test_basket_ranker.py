"""The LambdaRank next-basket ranker: trained on fresh rows before the cutoff only, exported to ONNX
with the models' contract, onnxruntime equal to LightGBM, and better than GP-TopFreq on simulated
households in the rolling protocol (the daemon's)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest

from models.basket_baselines import tuned_tifu
from models.basket_ranker import (
    MAX_MODEL_BYTES,
    PARITY_TOLERANCE,
    BasketRanker,
    RankerParams,
    parity_rows,
    served_precision,
    train_basket_ranker,
    training_days,
    write_ranker,
)
from models.basket_rows import collect
from models.cards import INPUT_NAME, read_model
from models.evaluation import evaluate_next_basket, evaluate_next_basket_rolling
from models.features import summarise
from models.history import PurchaseHistory, make_history
from models.inference import OnnxModel
from models.next_basket import BASKET_FEATURES, TOP_K, candidates
from models.ranker_features import TIFU_FEATURES, TREND_FEATURES, StoreTrend, feature_names, ranker_groups

FAST = RankerParams(n_estimators=80, learning_rate=0.1, min_child_samples=50)
TRAIN_EVERY = 7


@dataclass(frozen=True)
class Fitted:
    history: PurchaseHistory
    cutoff: int
    ranker: BasketRanker


@pytest.fixture(scope="module")
def fitted(small_history: PurchaseHistory) -> Fitted:
    cutoff = small_history.first_day + 180
    ranker = train_basket_ranker(small_history, cutoff, train_every=TRAIN_EVERY, params=FAST)
    return Fitted(small_history, cutoff, ranker)


def test_ranker_trains_on_fresh_rows_before_the_cutoff(fitted: Fitted) -> None:
    ranker, history, cutoff = fitted.ranker, fitted.history, fitted.cutoff
    assert ranker.features == (*BASKET_FEATURES, *TIFU_FEATURES, *TREND_FEATURES)
    assert ranker.booster.num_feature() == len(ranker.features)
    days = training_days(history, cutoff, TRAIN_EVERY)
    assert days[-1] < cutoff
    assert 0 < ranker.training["days"] <= len(days)
    # One basket per household and training day at most.
    assert ranker.training["baskets"] <= len(history.households) * ranker.training["days"]
    assert ranker.tifu == tuned_tifu(history, cutoff, history.last_day + 1, k=TOP_K).params


def test_ranker_never_sees_the_test_window(fitted: Fitted) -> None:
    """Everything after the cutoff shuffled across categories: the same trees."""
    history, cutoff = fitted.history, fitted.cutoff
    after = history.day >= cutoff
    category = history.category.copy()
    category[after] = np.random.default_rng(3).permutation(category[after])
    scrambled = make_history(
        history.households,
        history.categories,
        {
            name: getattr(history, name)
            for name in ("household", "day", "minute", "basket", "qty", "price", "promo")
        }
        | {"category": category},
    )
    again = train_basket_ranker(scrambled, cutoff, train_every=TRAIN_EVERY, params=FAST)
    assert again.tifu == fitted.ranker.tifu
    assert again.booster.model_to_string() == fitted.ranker.booster.model_to_string()


def test_float32_thresholds_keep_every_decision(fitted: Fitted) -> None:
    """Flooring the thresholds to float32 changes no prediction on float32 input (what is served)."""
    history, cutoff, ranker = fitted.history, fitted.cutoff, fitted.ranker
    rows = collect(
        history, training_days(history, cutoff, 28), np.random.default_rng(1), ranker.tifu, ranker.groups
    )
    x = np.hstack([rows.groups[g] for g in ranker.groups])
    unrounded = FAST.ranker().fit(x, rows.label.astype(np.int8), group=np.bincount(rows.query)).booster_
    floored = served_precision(unrounded)
    held_out = parity_rows(ranker, history, cutoff)
    for features in (x, held_out):
        assert np.array_equal(unrounded.predict(features), floored.predict(features))
    text = floored.model_to_string()
    thresholds = np.array(
        [v for line in text.splitlines() if line.startswith("threshold=") for v in line[10:].split()],
        dtype=np.float64,
    )
    assert thresholds.size
    assert np.array_equal(thresholds.astype(np.float32).astype(np.float64), thresholds)


def test_export_has_the_models_contract_and_matches_lightgbm(fitted: Fitted, tmp_path: Path) -> None:
    history, cutoff, ranker = fitted.history, fitted.cutoff, fitted.ranker
    card = write_ranker(tmp_path / "ranker", ranker, history, cutoff, source="small.npz")
    read, model = read_model(tmp_path / "ranker")
    assert read == card
    assert card.features == ranker.features
    assert card.kind == "regressor"
    assert 0 < card.onnx_bytes == len(model) <= MAX_MODEL_BYTES
    graph = onnx.load_from_string(model).graph
    assert [i.name for i in graph.input] == [INPUT_NAME]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    served = OnnxModel(tmp_path / "ranker", expected_features=ranker.features)
    # Held-out rows of other days and households than the export's own parity check.
    stats = summarise(history, cutoff + 20)
    cands = candidates(stats, np.unique(stats.pair_household)[-150:])
    x = ranker.feature_matrix(history, stats, cands, float(cutoff + 21))
    assert np.isnan(x).any()  # missing values take LightGBM's default branches in onnxruntime too
    assert np.max(np.abs(served.run(x) - ranker.score(x))) <= PARITY_TOLERANCE


def test_ranker_beats_gp_top_freq_in_the_rolling_protocol(fitted: Fitted) -> None:
    history, cutoff, ranker = fitted.history, fitted.cutoff, fitted.ranker
    report = evaluate_next_basket_rolling(history, cutoff, None, scorer=ranker.scorer())
    model, baseline = report["model"], report["baseline"]
    assert model["baskets"] == baseline["baskets"] == report["baseline_tifu_knn"]["baskets"] > 0
    assert model["recall@10"] > baseline["recall@10"]
    assert model["ndcg@10"] > baseline["ndcg@10"]
    assert np.isnan(model["ece"])
    assert 0 <= baseline["ece"] <= 1


def test_evaluation_takes_a_probability_or_a_scorer(fitted: Fitted) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        evaluate_next_basket(fitted.history, fitted.cutoff, None)
    with pytest.raises(ValueError, match="exactly one"):
        evaluate_next_basket(
            fitted.history, fitted.cutoff, lambda x: x[:, 0].astype(np.float64), scorer=fitted.ranker.scorer()
        )


def test_served_groups_line_up_with_their_names(fitted: Fitted) -> None:
    history, cutoff, ranker = fitted.history, fitted.cutoff, fitted.ranker
    stats = summarise(history, cutoff)
    cands = candidates(stats, np.unique(stats.pair_household)[:20])
    groups = ("base", "tifu", "trend")
    parts = ranker_groups(history, stats, cands, float(cutoff), ranker.tifu, groups)
    assert sum(parts[g].shape[1] for g in groups) == len(feature_names(groups))
    assert feature_names(("trend",)) == TREND_FEATURES
    # TIFU-KNN's rank column orders each query's candidates by its score column.
    first = cands.query == 0
    score, rank = parts["tifu"][first, 2], parts["tifu"][first, 3]
    assert np.all(np.diff(score[np.argsort(rank)]) <= 0)
    with pytest.raises(ValueError, match="unknown feature groups"):
        ranker_groups(history, stats, cands, float(cutoff), ranker.tifu, ("base", "weather"))


def test_store_trend_by_hand() -> None:
    """Two baskets a day; milk in one basket on day 0, in both on day 10: shares before day 11."""
    day0 = 20_000
    lines = [(0, 0, day0, 0), (1, 1, day0, 1), (0, 0, day0 + 10, 2), (1, 0, day0 + 10, 3)]
    h, c, d, b = (np.array(column) for column in zip(*lines, strict=True))
    columns = {"household": h, "category": c, "day": d, "minute": np.full(4, 600), "basket": b}
    columns |= {"qty": np.ones(4), "price": np.ones(4), "promo": np.zeros(4, dtype=bool)}
    history = make_history(("a", "b"), ("milk", "tea"), columns)
    trend = StoreTrend(history)
    milk = trend.at(np.array([0]), day0 + 11)[0]
    assert milk[:3] == pytest.approx([1.0, 0.75, 0.75])  # 7 days: 2 of 2; 28 and all: 3 of 4
    assert milk[3:] == pytest.approx([1 / 0.75, 1.0])
    tea_before = trend.at(np.array([1]), day0 + 1)[0]
    assert tea_before[:3] == pytest.approx([0.5, 0.5, 0.5])
