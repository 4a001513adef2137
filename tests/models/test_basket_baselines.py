"""Next-basket baselines (GP-TopFreq, TIFU-KNN): rankings worked out by hand on tiny histories, the
repeat/explore arithmetic, and tuning that never sees the test window."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import models.basket_baselines as bb
from models.basket_baselines import (
    TifuGrid,
    TifuParams,
    evaluate_basket_baselines,
    gp_top_freq,
    tifu_knn_top,
    tifu_vectors,
    tune_tifu,
)
from models.basket_protocol import (
    BasketSequences,
    HeldOutBaskets,
    basket_sequences,
    held_out_baskets,
    ranking_metrics,
)
from models.history import PurchaseHistory, make_history
from models.metrics import mean_by_group, ranking

from .conftest import Trained

CATEGORIES = ("bread", "eggs", "fish", "milk", "tea")  # codes 0..4 (sorted, as loading keeps them)
DAY0 = 20_000


def _history(
    baskets: list[tuple[str, int, list[str]]], items: tuple[str, ...] = CATEGORIES
) -> PurchaseHistory:
    """One line per (basket, item); baskets are (household, day offset, items); ``items``: the item names
    (categories here, products in tests/models/test_product_level.py)."""
    households = sorted({h for h, _, _ in baskets})
    rows = [
        (households.index(h), items.index(c), DAY0 + day, basket)
        for basket, (h, day, cats) in enumerate(baskets)
        for c in cats
    ]
    h, c, d, b = (np.array(column) for column in zip(*rows, strict=True))
    n = len(rows)
    columns = {
        "household": h,
        "category": c,
        "day": d,
        "minute": np.full(n, 600),
        "basket": b,
        "qty": np.ones(n),
        "price": np.ones(n),
        "promo": np.zeros(n, dtype=bool),
    }
    return make_history(households, items, columns)


def _names(codes: np.ndarray[Any, Any]) -> list[str]:
    return [CATEGORIES[int(c)] for c in codes]


# a: milk in all three baskets, bread and eggs once; b: bread twice, tea once; c: bread and fish once.
# Popularity (households): bread 3, every other category 1.
SMALL_TOWN = [
    ("a", 0, ["milk", "bread"]),
    ("b", 1, ["bread", "tea"]),
    ("a", 2, ["milk"]),
    ("c", 3, ["fish", "bread"]),
    ("b", 4, ["bread"]),
    ("a", 5, ["milk", "eggs"]),
]


def test_basket_sequences_count_back_from_the_latest_basket() -> None:
    seq = basket_sequences(_history(SMALL_TOWN), DAY0 + 5)  # a's basket of day 5 is not before it
    assert seq.n_baskets.tolist() == [2, 2, 1]
    rows = sorted(
        (int(h), CATEGORIES[int(c)], int(age))
        for h, c, age in zip(seq.household, seq.category, seq.age, strict=True)
    )
    assert rows == [
        (0, "bread", 1),
        (0, "milk", 0),
        (0, "milk", 1),
        (1, "bread", 0),
        (1, "bread", 1),
        (1, "tea", 1),
        (2, "bread", 0),
        (2, "fish", 0),
    ]
    assert seq.popularity().tolist() == [3, 0, 1, 1, 1]  # eggs not before day 5


def test_gp_top_freq_by_hand() -> None:
    seq = basket_sequences(_history(SMALL_TOWN), DAY0 + 10)
    top = gp_top_freq(seq, np.array([0, 1, 2]), k=4)
    # a: milk (3 baskets), then bread and eggs (1 each; bread is more popular), then the most popular
    # categories it never bought: fish and tea (1 household each; code order).
    assert _names(top[0]) == ["milk", "bread", "eggs", "fish"]
    assert _names(top[1]) == ["bread", "tea", "eggs", "fish"]
    # c: bread and fish tie at 1 basket: bread is more popular.
    assert _names(top[2]) == ["bread", "fish", "eggs", "milk"]


def test_tifu_vector_weights_by_hand() -> None:
    # One household, five baskets of one category each (oldest first): tea, fish, eggs, bread, milk.
    baskets = [("a", day, [name]) for day, name in enumerate(["tea", "fish", "eggs", "bread", "milk"])]
    seq = basket_sequences(_history(baskets), DAY0 + 10)
    vector = tifu_vectors(seq, group_size=2, within_decay=0.5, group_decay=0.25)[0]
    # Groups from the latest: {milk, bread}, {eggs, fish}, {tea} (3 groups; the oldest holds one).
    # weight = r_g^group * r_b^(position in group) / baskets in group / groups.
    expected = {
        "milk": 1 / 2 / 3,
        "bread": 0.5 / 2 / 3,
        "eggs": 0.25 / 2 / 3,
        "fish": 0.25 * 0.5 / 2 / 3,
        "tea": 0.25**2 / 1 / 3,
    }
    assert vector.tolist() == pytest.approx([expected[name] for name in CATEGORIES])


def test_tifu_vector_weights_as_in_the_authors_code() -> None:
    baskets = [("a", day, [name]) for day, name in enumerate(["tea", "fish", "eggs", "bread", "milk"])]
    seq = basket_sequences(_history(baskets), DAY0 + 10)
    vector = tifu_vectors(seq, group_size=2, within_decay=0.5, group_decay=0.25, grouping="count")[0]
    # 2 groups of near-equal size, the later one larger: {tea, fish}, {eggs, bread, milk}.
    # weight = r_b^(baskets after it) * r_g^(groups after its group) / baskets in group / groups.
    expected = {
        "milk": 1 / 3 / 2,
        "bread": 0.5 / 3 / 2,
        "eggs": 0.25 / 3 / 2,
        "fish": 0.125 * 0.25 / 2 / 2,
        "tea": 0.0625 * 0.25 / 2 / 2,
    }
    assert vector.tolist() == pytest.approx([expected[name] for name in CATEGORIES])
    # Fewer baskets than groups: each basket its own group, still decayed as group i of m.
    seq = basket_sequences(_history(baskets[-2:]), DAY0 + 10)
    vector = tifu_vectors(seq, group_size=3, within_decay=0.5, group_decay=0.25, grouping="count")[0]
    expected = {"milk": 0.25 / 2, "bread": 0.5 * 0.25**2 / 2}
    assert vector.tolist() == pytest.approx([expected.get(name, 0.0) for name in CATEGORIES])


def test_tifu_without_decay_or_neighbours_is_personal_top_frequency(trained: Trained) -> None:
    seq = basket_sequences(trained.history, trained.cutoff)
    households = np.flatnonzero(seq.n_baskets > 0)
    plain = TifuParams("size", group_size=1, within_decay=1.0, group_decay=1.0, neighbours=10, alpha=1.0)
    assert np.array_equal(tifu_knn_top(seq, households, plain), gp_top_freq(seq, households))
    decayed = TifuParams("size", group_size=1, within_decay=1.0, group_decay=0.5, neighbours=10, alpha=1.0)
    assert not np.array_equal(tifu_knn_top(seq, households, decayed), gp_top_freq(seq, households))


# a and b share milk; b buys eggs more often; c buys fish and tea only (cosine 0 with a and b).
NEIGHBOURS = [
    ("a", 0, ["milk"]),
    ("a", 1, ["milk", "bread"]),
    ("b", 0, ["milk", "eggs"]),
    ("b", 1, ["eggs"]),
    ("c", 0, ["fish"]),
    ("c", 1, ["fish", "tea"]),
]


def test_tifu_neighbours_by_hand() -> None:
    seq = basket_sequences(_history(NEIGHBOURS), DAY0 + 2)
    everyone = np.array([0, 1, 2])
    only_neighbours = TifuParams("size", 1, 1.0, 1.0, neighbours=1, alpha=0.0)
    top = tifu_knn_top(seq, everyone, only_neighbours, k=2)
    # Without decay a vector is basket counts / baskets: a (milk 1, bread 1/2), b (eggs 1, milk 1/2).
    # a's nearest is b: b's vector is a's score; eggs, new to a (explore), leads.
    assert _names(top[0]) == ["eggs", "milk"]
    # b's nearest is a (milk 1, bread 1/2).
    assert _names(top[1]) == ["milk", "bread"]
    # c is orthogonal to both; its neighbour is never itself, so fish (only c's) cannot lead.
    assert "fish" not in _names(top[2])
    mixed = TifuParams("size", 1, 1.0, 1.0, neighbours=1, alpha=0.6)
    # a: milk 0.6 * 1 + 0.4 * 0.5 = 0.8, eggs 0.4 * 1, bread 0.6 * 0.5 = 0.3.
    assert _names(tifu_knn_top(seq, everyone, mixed, k=3)[0]) == ["milk", "eggs", "bread"]


def _held_out(items: list[tuple[int, int, bool]], households: list[int]) -> HeldOutBaskets:
    basket, category, repeat = (np.array(column) for column in zip(*items, strict=True))
    return HeldOutBaskets(
        0, 1, np.array(households), np.zeros(len(households), np.int64), basket, category, repeat
    )


def test_recall_ndcg_repeat_and_explore_by_hand() -> None:
    # Household 0, basket 0: categories 1, 2 (repeat) and 3 (explore), ranked [1, 3, 5]: hits 1 and 3.
    # Household 0, basket 1: category 2 (repeat), ranked [1, 3, 5]: no hit.
    # Household 1, basket 2: category 4 (explore), ranked [4, 0, 1]: a hit at rank 1.
    baskets = _held_out([(0, 1, True), (0, 2, True), (0, 3, False), (1, 2, True), (2, 4, False)], [0, 0, 1])
    top = np.array([[1, 3, 5], [1, 3, 5], [4, 0, 1]])
    m = ranking_metrics(top, baskets)
    assert m.recall == pytest.approx(((2 / 3 + 0) / 2 + 1) / 2)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m.ndcg == pytest.approx((((1 + 1 / math.log2(3)) / ideal + 0) / 2 + 1) / 2)
    # Repeat: household 0 has (1/2 + 0) / 2; household 1 has no repeat items and does not count.
    assert m.recall_repeat == pytest.approx(0.25)
    # Explore: household 0's basket 1 has no new items; 1 for both households.
    assert m.recall_explore == pytest.approx(1.0)
    assert (m.baskets, m.households) == (3, 2)
    assert m.report()["recall_new@10"] == m.recall_explore


def test_ranking_metrics_agree_with_the_candidate_ranking() -> None:
    rng = np.random.default_rng(3)
    n_baskets, n_cat, k = 40, 12, 5
    household = rng.integers(0, 9, n_baskets)
    items = [
        (b, int(c), bool(rng.random() < 0.7))
        for b in range(n_baskets)
        for c in rng.permutation(n_cat)[: rng.integers(1, 8)]
    ]
    baskets = _held_out(sorted(items), household.tolist())
    top = np.array([rng.permutation(n_cat)[:k] for _ in range(n_baskets)])
    m = ranking_metrics(top, baskets)
    # The same through models.metrics.ranking: every category a candidate, score = k - rank.
    query = np.repeat(np.arange(n_baskets), n_cat)
    category = np.tile(np.arange(n_cat), n_baskets)
    rank_of = np.full((n_baskets, n_cat), k)
    np.put_along_axis(rank_of, top, np.arange(k)[None, :].repeat(n_baskets, 0), axis=1)
    truth = set(zip(baskets.item_basket.tolist(), baskets.item_category.tolist(), strict=True))
    relevant = np.array([(int(q), int(c)) in truth for q, c in zip(query, category, strict=True)])
    n_relevant = np.bincount(baskets.item_basket, minlength=n_baskets)
    score = -rank_of[query, category].astype(np.float64)
    _, recall, ndcg = ranking(query, score, relevant, n_relevant, k)
    assert m.recall == pytest.approx(mean_by_group(recall, household))
    assert m.ndcg == pytest.approx(mean_by_group(ndcg, household))


def test_held_out_baskets_mark_repeats_from_before_the_window() -> None:
    history = _history(SMALL_TOWN)
    window = held_out_baskets(history, DAY0 + 3, DAY0 + 6)
    # c's first basket is on day 3: c has no history before the window, so its basket is left out.
    assert window.household.tolist() == [0, 1]  # a (day 5), b (day 4): canonical order
    items = sorted(
        (int(window.household[b]), CATEGORIES[int(c)], bool(r))
        for b, c, r in zip(window.item_basket, window.item_category, window.item_repeat, strict=True)
    )
    assert items == [(0, "eggs", False), (0, "milk", True), (1, "bread", True)]


def test_tuning_follows_the_validation_baskets() -> None:
    history = _history([*NEIGHBOURS, ("a", 3, ["eggs"]), ("b", 3, ["milk"])])
    train = basket_sequences(history, DAY0 + 2)
    grid = TifuGrid(
        grouping=("size",),
        group_size=(1,),
        within_decay=(1.0,),
        group_decay=(1.0,),
        neighbours=(1,),
        alpha=(1.0, 0.0),
    )
    # Next, a buys eggs (b's favourite) and b milk (a's): at k = 1 only the neighbours (alpha 0) hit.
    chosen = tune_tifu(train, held_out_baskets(history, DAY0 + 2, DAY0 + 4), grid, k=1)
    assert chosen.params.alpha == 0.0
    assert chosen.validation.recall == 1.0
    assert chosen.validation_gp_top_freq.recall == 0.0
    assert chosen.validation.recall > chosen.validation_gp_top_freq.recall
    # When each buys its own favourite, a household's own history is right: alpha 1.
    history = _history([*NEIGHBOURS, ("a", 3, ["milk"]), ("b", 3, ["eggs"])])
    chosen = tune_tifu(train, held_out_baskets(history, DAY0 + 2, DAY0 + 4), grid, k=1)
    assert chosen.params.alpha == 1.0
    with pytest.raises(ValueError, match="overlap the validation window"):
        tune_tifu(basket_sequences(history, DAY0 + 3), held_out_baskets(history, DAY0 + 2, DAY0 + 4), grid)


SMALL_GRID = TifuGrid(
    group_size=(1, 4), within_decay=(1.0,), group_decay=(0.7, 1.0), neighbours=(20, 80), alpha=(0.7, 1.0)
)


def test_tuning_never_sees_the_test_window(trained: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    history, cutoff = trained.history, trained.cutoff
    seen: list[tuple[BasketSequences, HeldOutBaskets]] = []
    real = bb.tune_tifu

    def spy(train: BasketSequences, validation: HeldOutBaskets, *args: Any) -> bb.TifuTuning:
        seen.append((train, validation))
        return real(train, validation, *args)

    monkeypatch.setattr(bb, "tune_tifu", spy)
    bb.tuned_tifu.cache_clear()
    report = evaluate_basket_baselines(history, cutoff, history.last_day + 1, grid=SMALL_GRID)
    ((train, validation),) = seen
    assert train.until_day == validation.start_day < validation.end_day == cutoff
    assert validation.day.max() < cutoff
    assert report["tifu_knn_tuning"]["validation_days"] == history.last_day + 1 - cutoff
    # Scrambling the test window changes the test figures, not the tuning.
    rng = np.random.default_rng(0)
    after = history.day >= cutoff
    category = history.category.copy()
    category[after] = rng.integers(0, len(history.categories), int(after.sum()))
    scrambled = make_history(
        history.households,
        history.categories,
        {
            name: getattr(history, name)
            for name in ("household", "day", "minute", "basket", "qty", "price", "promo")
        }
        | {"category": category},
    )
    again = evaluate_basket_baselines(scrambled, cutoff, history.last_day + 1, grid=SMALL_GRID)
    assert again["tifu_knn_tuning"] == report["tifu_knn_tuning"]
    assert again["tifu_knn"]["recall@10"] != report["tifu_knn"]["recall@10"]


def test_baselines_rank_the_models_baskets_in_both_protocols(trained: Trained) -> None:
    history, cutoff, end = trained.history, trained.cutoff, trained.history.last_day + 1
    for protocol, rolling in (("next_basket", False), ("next_basket_rolling", True)):
        part = trained.report[protocol]
        assert part["baseline_tifu_knn"]["baskets"] == part["model"]["baskets"]
        assert part["baseline_tifu_knn"]["households"] == part["model"]["households"]
        ours = evaluate_basket_baselines(history, cutoff, end, rolling=rolling, grid=SMALL_GRID)
        # The evaluation ranks GP-TopFreq over the model's candidates, here it ranks every category: the
        # same whenever the candidates hold the top 10 (they do here; not always when ties straddle a
        # household's 40th category, or popular fill is needed beyond the 10 most popular).
        for key in ("recall@10", "ndcg@10", "recall_repeat@10", "baskets"):
            assert ours["gp_top_freq"][key] == pytest.approx(part["baseline"][key])
