"""Next basket at product level: P-TopFreq and TIFU-KNN worked out by hand or against the category-level
code on small histories, the sparse protocol against the dense one, the ranker's lists, and tuning and
training that never see the test window."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import models.product_tifu as pt
from models.basket_baselines import TifuParams, gp_top_freq, tifu_knn_parts, tifu_knn_top, tifu_vectors
from models.basket_protocol import basket_sequences, held_out_baskets
from models.basket_ranker import RankerParams
from models.history import PurchaseHistory, make_history
from models.product_features import neighbour_scores
from models.product_level import (
    frozen_product_metrics,
    held_out_products,
    p_top_freq,
    product_sequences,
    rolling_product_metrics,
)
from models.product_ranker import RowPlan, train_product_ranker
from models.product_tifu import (
    ProductTifuGrid,
    TifuMatrix,
    product_tifu_top,
    tifu_weights,
    tuned_product_tifu,
)
from tests.models.test_basket_baselines import DAY0
from tests.models.test_basket_baselines import _history as item_history

PRODUCTS = ("apple", "bread", "cheese", "eggs", "milk", "tea")  # codes 0..5
NO_DECAY = TifuParams("size", 1000, 1.0, 1.0, 0, 1.0)


def _history(
    baskets: list[tuple[str, int, list[str]]], products: tuple[str, ...] = PRODUCTS
) -> PurchaseHistory:
    """One line per (basket, product); baskets are (household, day offset, products)."""
    return item_history(baskets, products)


def _random_history(seed: int, households: int = 40, products: int = 60, days: int = 150) -> PurchaseHistory:
    """Households with favourite products (bought often) and random others, a basket every few days."""
    rng = np.random.default_rng(seed)
    names = tuple(f"p{i:03d}" for i in range(products))
    baskets: list[tuple[str, int, list[str]]] = []
    for h in range(households):
        favourites = rng.choice(products, size=8, replace=False)
        for day in range(int(rng.integers(0, 4)), days, int(rng.integers(2, 6))):
            keep = favourites[rng.random(8) < 0.5]
            extra = rng.choice(products, size=int(rng.integers(0, 4)), replace=False)
            items = sorted({names[i] for i in np.concatenate([keep, extra])})
            if items:
                baskets.append((f"h{h:02d}", day, items))
    return _history(baskets, names)


def test_p_top_freq_picks_the_most_frequent_products_then_the_popular_ones() -> None:
    history = _history(
        [
            ("a", 0, ["milk", "bread"]),
            ("a", 2, ["milk", "eggs"]),
            ("a", 4, ["milk", "bread", "tea"]),
            ("b", 1, ["tea", "cheese"]),
            ("b", 3, ["tea"]),
            ("c", 1, ["tea", "apple"]),
        ]
    )
    sequences = product_sequences(history, DAY0 + 10)
    top = p_top_freq(sequences, np.array([0, 1]), k=6)
    # a: milk 3, bread 2, then tea and eggs once each (tea bought by 3 households, eggs by 1), then the
    # products it never bought by popularity (apple and cheese: one household each, code order).
    assert [PRODUCTS[p] for p in top[0]] == ["milk", "bread", "tea", "eggs", "apple", "cheese"]
    # b: tea 2, cheese 1, then the rest (one household each) in code order: milk, a's favourite, is last.
    assert [PRODUCTS[p] for p in top[1]] == ["tea", "cheese", "apple", "bread", "eggs", "milk"]


def test_p_top_freq_equals_gp_top_freq_of_the_category_code_on_the_same_items() -> None:
    history = _random_history(1)
    until = DAY0 + 100
    households = np.arange(len(history.households))
    expected = gp_top_freq(basket_sequences(history, until), households)
    assert np.array_equal(p_top_freq(product_sequences(history, until), households), expected)


def test_tifu_without_decay_or_neighbours_is_p_top_freq() -> None:
    history = _random_history(2)
    sequences = product_sequences(history, DAY0 + 120)
    households = np.arange(len(history.households))
    assert np.array_equal(
        product_tifu_top(sequences, households, NO_DECAY), p_top_freq(sequences, households)
    )


@pytest.mark.parametrize("grouping", ["size", "count"])
def test_tifu_weights_sum_to_the_dense_category_vectors(grouping: Any) -> None:
    history = _random_history(3)
    sequences = basket_sequences(history, DAY0 + 120)
    params = TifuParams(grouping, 4, 0.9, 0.7, 0, 1.0)
    dense = tifu_vectors(sequences, 4, 0.9, 0.7, grouping)
    sparse_sum = np.zeros_like(dense)
    np.add.at(sparse_sum, (sequences.household, sequences.category), tifu_weights(sequences, params))
    assert np.allclose(sparse_sum, dense)


def test_product_tifu_with_neighbours_ranks_as_the_category_code() -> None:
    history = _random_history(4)
    until = DAY0 + 120
    households = np.array([0, 3, 7, 20])
    params = TifuParams("count", 5, 1.0, 0.9, 6, 0.6)
    expected = tifu_knn_top(basket_sequences(history, until), households, params)
    assert np.array_equal(product_tifu_top(product_sequences(history, until), households, params), expected)


def test_held_out_products_match_the_dense_protocol() -> None:
    history = _random_history(5)
    start, end = DAY0 + 100, DAY0 + 130
    sparse_view, dense_view = held_out_products(history, start, end), held_out_baskets(history, start, end)
    assert np.array_equal(sparse_view.household, dense_view.household)
    assert np.array_equal(sparse_view.day, dense_view.day)

    def items(view: Any) -> list[tuple[int, int, bool]]:
        return sorted(
            zip(
                view.item_basket.tolist(), view.item_category.tolist(), view.item_repeat.tolist(), strict=True
            )
        )

    assert items(sparse_view) == items(dense_view)
    assert 0 < dense_view.item_repeat.mean() < 1  # both kinds present: the test can tell them apart


def test_rolling_on_one_day_is_frozen_on_that_day() -> None:
    history = _random_history(6)
    day = DAY0 + 110
    rankers = {"p": p_top_freq}
    assert rolling_product_metrics(history, day, day + 1, rankers) == frozen_product_metrics(
        history, day, day + 1, rankers
    )


def _scramble_after(history: PurchaseHistory, day: int, seed: int) -> PurchaseHistory:
    """The same history with every product of the lines on or after ``day`` replaced at random."""
    rng = np.random.default_rng(seed)
    late = history.day >= day
    product = history.category.copy()
    product[late] = rng.integers(0, len(history.categories), int(late.sum()))
    columns = {
        name: getattr(history, name)
        for name in ("household", "day", "minute", "basket", "qty", "price", "promo")
    }
    return make_history(history.households, history.categories, {**columns, "category": product})


SMALL_GRID = ProductTifuGrid(
    grouping=("count", "size"),
    group_size=(3, 10),
    group_decay=(0.7, 1.0),
    neighbours=(3, 8),
    alpha=(0.5, 1.0),
)


def test_tuning_never_sees_the_test_window(monkeypatch: pytest.MonkeyPatch) -> None:
    history = _random_history(7)
    cutoff, end = DAY0 + 110, history.last_day + 1
    seen: list[tuple[int, int, int]] = []
    tune = pt.tune_product_tifu

    def spy(train: Any, validation: Any, grid: Any, k: int = 10) -> Any:
        seen.append((train.until_day, validation.start_day, validation.end_day))
        assert int(train.day.max()) < cutoff
        assert int(validation.day.max()) < cutoff
        return tune(train, validation, grid, k)

    monkeypatch.setattr(pt, "tune_product_tifu", spy)
    tuning = tuned_product_tifu(history, cutoff, end, SMALL_GRID)
    assert seen == [(cutoff - (end - cutoff), cutoff - (end - cutoff), cutoff)]
    again = tuned_product_tifu(_scramble_after(history, cutoff, 0), cutoff, end, SMALL_GRID)
    assert again.report() == tuning.report()


def test_the_ranker_ranks_each_product_once_and_learns_only_before_the_cutoff() -> None:
    history = _random_history(8, households=60, products=80, days=200)
    cutoff = DAY0 + 170
    product_category = np.arange(len(history.categories)) // 5
    params = TifuParams("count", 10, 1.0, 0.9, 5, 0.7)
    plan = RowPlan(every=3, horizon=1, baskets_per_household=1)
    small = RankerParams(n_estimators=30, min_child_samples=20)
    ranker = train_product_ranker(history, product_category, cutoff, params, plan=plan, params=small)
    sequences = product_sequences(history, cutoff)
    households = np.arange(len(history.households))
    top = ranker.top(sequences, households)
    assert top.shape == (households.size, 10)
    assert (top >= 0).all()
    assert all(len(set(row)) == len(row) for row in top.tolist())
    # It learned something: it is not P-TopFreq's list everywhere.
    assert not np.array_equal(top, p_top_freq(sequences, households))
    scrambled = _scramble_after(history, cutoff, 1)
    again = train_product_ranker(scrambled, product_category, cutoff, params, plan=plan, params=small)
    assert np.array_equal(again.top(product_sequences(scrambled, cutoff), households), top)


def test_frozen_rows_draw_several_baskets_per_household() -> None:
    history = _random_history(9, households=30, products=50, days=160)
    product_category = np.arange(len(history.categories)) // 5
    params = TifuParams("count", 10, 1.0, 0.9, 5, 0.7)
    frozen = RowPlan(every=20, horizon=40, baskets_per_household=3)
    small = RankerParams(n_estimators=10, min_child_samples=20)
    ranker = train_product_ranker(history, product_category, DAY0 + 150, params, plan=frozen, params=small)
    assert ranker.training["queries"] > 2 * ranker.training["days"] * 10


def test_tifu_matrix_has_a_column_per_bought_product_only() -> None:
    history = _history([("a", 0, ["milk"]), ("b", 1, ["tea", "milk"])])
    matrix = TifuMatrix.build(product_sequences(history, DAY0 + 5), NO_DECAY)
    assert [PRODUCTS[p] for p in matrix.products] == ["milk", "tea"]
    assert matrix.vectors.shape == (2, 2)


def test_neighbour_feature_is_tifu_knns_neighbour_mean() -> None:
    history = _random_history(10)
    until = DAY0 + 120
    households = np.array([1, 4, 9])
    params = TifuParams("count", 5, 1.0, 0.9, 6, 0.6)
    _, dense = tifu_knn_parts(basket_sequences(history, until), households, params)
    query = np.repeat(np.arange(households.size), len(history.categories))
    product = np.tile(np.arange(len(history.categories)), households.size)
    feature = neighbour_scores(product_sequences(history, until), households, params, query, product)
    assert np.allclose(feature, dense[query, product])
    assert (feature > 0).any()
