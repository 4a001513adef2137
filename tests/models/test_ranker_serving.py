"""The ranker's served features (`models.ranker_serving`): the blocked float32 neighbour search equals a
brute-force full float64 matrix, and the state + per-step split gives the offline columns
(`models.ranker_features.ranker_groups`) and the same scores through the shipped ranker's ONNX export."""

from __future__ import annotations

import dataclasses
import functools
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.basket_baselines import TifuParams, tifu_knn_parts, tifu_vectors
from models.basket_protocol import basket_sequences
from models.errors import ModelLoadError
from models.features import summarise
from models.history import PurchaseHistory
from models.inference import RANKER_DIR, TRAINED_DIR, NextBasketRankerModel, load_models
from models.next_basket import basket_features, candidates
from models.ranker_features import ranker_groups
from models.ranker_serving import _top_k, nearest_means, neighbour_state, ranker_features


@functools.cache
def shipped_ranker() -> NextBasketRankerModel:
    return NextBasketRankerModel(TRAINED_DIR / RANKER_DIR)


def brute_force_means(vectors: np.ndarray, k: int) -> np.ndarray:
    """Every household's k most cosine-similar others (with a vector) by the whole float64 matrix."""
    norm = np.linalg.norm(vectors, axis=1)
    unit = vectors / np.maximum(norm, 1e-12)[:, None]
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    similarity[:, norm == 0] = -np.inf
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    means = vectors[nearest].mean(axis=1)
    means[norm == 0] = 0.0
    return np.asarray(means)


@pytest.mark.parametrize(("k", "copies"), [(1, 0), (7, 0), (40, 0), (40, 60), (280, 0)])
def test_blocked_neighbours_equal_the_full_matrix(
    small_history: PurchaseHistory, k: int, copies: int
) -> None:
    """k = 280 of about 290: rows whose sampled threshold keeps too few candidates are ranked in full;
    ``copies`` households twice over: exact ties."""
    day = small_history.first_day + 150
    vectors = tifu_vectors(basket_sequences(small_history, day), 7, 0.9, 0.8, "count")
    vectors = np.vstack((vectors, vectors[:copies]))
    assert (np.linalg.norm(vectors, axis=1) == 0).any()  # households with no basket yet: no neighbours
    everyone = np.arange(vectors.shape[0], dtype=np.int64)
    expected = brute_force_means(vectors, k)
    for block, workers in ((64, 2), (1000, 1), (7, 3)):
        got = nearest_means(vectors, vectors, everyone, everyone, k, block=block, workers=workers)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    if copies:
        return
    # The same as TIFU-KNN's own neighbour part (models.basket_baselines, one float64 matrix).
    params = TifuParams("count", 7, 0.9, 0.8, k, 0.7)
    has = np.flatnonzero(np.linalg.norm(vectors, axis=1) > 0)
    _own, offline = tifu_knn_parts(basket_sequences(small_history, day), has, params)
    np.testing.assert_allclose(expected[has], offline, rtol=0, atol=1e-12)


def test_a_household_outside_the_state_gets_its_neighbours_found_on_the_fly(
    small_history: PurchaseHistory,
) -> None:
    day = small_history.first_day + 150
    vectors = tifu_vectors(basket_sequences(small_history, day), 7, 0.9, 0.8, "count")
    everyone = np.arange(vectors.shape[0], dtype=np.int64)
    inside = nearest_means(vectors, vectors, everyone, everyone, 10, block=50)
    # Queried by id (itself excluded) one at a time: the same; with an unknown id it may pick itself.
    some = everyone[np.linalg.norm(vectors, axis=1) > 0][:5]
    alone = nearest_means(vectors[some], vectors, some, everyone, 10)
    np.testing.assert_allclose(alone, inside[some], rtol=0, atol=1e-12)
    stranger = nearest_means(vectors[some], vectors, np.full(some.size, -1, np.int64), everyone, 10)
    assert not np.allclose(stranger, inside[some])


@dataclasses.dataclass(frozen=True)
class Served:
    offline: np.ndarray
    served: np.ndarray


def served_and_offline(history: PurchaseHistory, until: int, tifu: TifuParams) -> Served:
    """The ranker's input for every third household's trip on ``until``: offline from the whole history;
    served from a state of the store's lines before ``until`` (what the daemon has at 03:00) and a
    scoring step of those households only, its store-wide counts replaced as the daemon replaces them."""
    ranker = shipped_ranker()
    store = history.select(history.day < until)
    state = neighbour_state(store, until, tifu, block=50, workers=2)
    chosen = np.unique(store.household)[::3].astype(np.int64)
    step = store.select(np.isin(store.household, chosen))
    full = summarise(history, until)
    stats = dataclasses.replace(
        summarise(step, until), cat_households=full.cat_households, active_households=full.active_households
    )
    cands = candidates(stats, chosen)
    served = ranker_features(
        state, step, stats, cands, ranker.groups, basket_features(stats, cands, float(until))
    )
    offline_cands = candidates(full, chosen)
    assert np.array_equal(offline_cands.category, cands.category)
    groups = ranker_groups(history, full, offline_cands, float(until), tifu, ranker.groups)
    offline = np.hstack([groups[g] for g in ranker.groups]).astype(np.float32)
    return Served(offline, served)


def test_served_features_and_scores_equal_the_offline_path(small_history: PurchaseHistory) -> None:
    # Without promotions, as on the edge (the till sends no promotion flag; a household's promotion
    # sensitivity is relative to the store's promotions, which a step of households does not see whole).
    history = dataclasses.replace(small_history, promo=np.zeros_like(small_history.promo))
    until = history.first_day + 200
    ranker = shipped_ranker()
    for tifu in (ranker.tifu, dataclasses.replace(ranker.tifu, neighbours=9)):
        got = served_and_offline(history, until, tifu)
        assert got.served.shape == got.offline.shape == (got.served.shape[0], len(ranker.card.features))
        np.testing.assert_array_equal(np.isnan(got.served), np.isnan(got.offline))
        np.testing.assert_allclose(got.served, got.offline, rtol=1e-6, atol=1e-7, equal_nan=True)
        scores = ranker.score(got.served), ranker.score(got.offline)
        np.testing.assert_allclose(scores[0], scores[1], rtol=0, atol=1e-6)
        assert np.unique(scores[0]).size > 10  # a model that orders, not a constant


def test_the_shipped_set_has_the_ranker_and_a_broken_card_is_refused(tmp_path: Path) -> None:
    models = load_models(TRAINED_DIR)
    assert models.next_basket_ranker is not None
    card = models.next_basket_ranker.card
    assert card.kind == "regressor"
    assert card.onnx_bytes <= 1_000_000
    assert card.params["groups"] == ["base", "tifu", "trend"]
    assert TifuParams(**card.params["tifu_knn"]) == shipped_ranker().tifu  # type: ignore[arg-type]
    assert "rolling" in card.metrics
    broken = tmp_path / RANKER_DIR
    shutil.copytree(TRAINED_DIR / RANKER_DIR, broken)
    text = (broken / "card.json").read_text().replace('"tifu_knn"', '"tifu_knm"')
    (broken / "card.json").write_text(text)
    with pytest.raises(ModelLoadError, match="tifu_knn"):
        NextBasketRankerModel(broken)


def test_households_not_in_the_state_get_the_same_neighbours(small_history: PurchaseHistory) -> None:
    """A household new since the refresh (not in the state) gets its neighbours found among the state's
    households in the scoring step: the same TIFU-KNN columns as offline, where everyone else is the pool."""
    ranker = shipped_ranker()
    history = dataclasses.replace(small_history, promo=np.zeros_like(small_history.promo))
    until = history.first_day + 200
    store = history.select(history.day < until)
    full = summarise(history, until)
    for household in np.unique(store.household)[[3, 101, 250]]:
        chosen = np.array([household], dtype=np.int64)
        state = neighbour_state(store.select(store.household != household), until, ranker.tifu, block=40)
        assert not state.has_vector[household]  # it is in the table with no baskets: not its neighbours
        step = store.select(store.household == household)
        stats = dataclasses.replace(
            summarise(step, until),
            cat_households=full.cat_households,
            active_households=full.active_households,
        )
        cands = candidates(stats, chosen)
        base = basket_features(stats, cands, float(until))
        served = ranker_features(state, step, stats, cands, ("base", "tifu"), base)
        groups = ranker_groups(history, full, candidates(full, chosen), float(until), ranker.tifu, ("tifu",))
        np.testing.assert_allclose(served[:, base.shape[1] :], groups["tifu"], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("k", [1, 5, 40, 150])
def test_top_k_is_the_stable_sorts_first_k_as_a_set(k: int) -> None:
    """Rows of few distinct values (ties at the k-th everywhere), rows of one value (every column a
    candidate: ranked in full) and ordinary rows: the same k columns a row as a stable sort's first k."""
    rng = np.random.default_rng(k)
    n = 6_000
    similarity = rng.random((60, n)).astype(np.float32)
    similarity[:20] = np.round(similarity[:20] * 4) / 4  # five values
    similarity[20:25] = 0.5
    similarity[25:30, rng.integers(0, n, 40)] = -np.inf
    got = _top_k(similarity, k).reshape(-1, k)
    expected = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(np.sort(got, axis=1), np.sort(expected, axis=1))
