"""Household segments: features by hand, planted clusters recovered, ids stable across refits and row
order, the shipped model's JSON round trip, and names that stay off declined inferences."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from models.customers.segment_naming import FORBIDDEN_WORDS, WORDS, forbidden_in, frequency_word, segment_name
from models.customers.segments import (
    FEATURE_NAMES,
    SECONDS_PER_DAY,
    BasketLines,
    SegmentModel,
    assign,
    basket_lines_from_history,
    fit_segments,
    segment_features,
    segment_model_from_json,
    segment_model_to_json,
)
from models.customers.segments_kmeans import adjusted_rand_index
from models.errors import DatasetError
from models.history import PurchaseHistory

F64 = npt.NDArray[np.float64]
DAY = SECONDS_PER_DAY
HOUR = 3600.0


def _lines(rows: list[tuple[str, float, str, float, bool]], lacks: tuple[str, ...] = ()) -> BasketLines:
    return BasketLines(
        household=np.array([r[0] for r in rows], dtype=str),
        ts=np.array([r[1] for r in rows]),
        category=np.array([r[2] for r in rows], dtype=str),
        spend=np.array([r[3] for r in rows]),
        promoted=np.array([r[4] for r in rows]),
        lacks=lacks,
    )


def test_features_by_hand() -> None:
    # Day 3 (epoch) is a Sunday, day 4 a Monday. End: day 200 (well past the trend window for "a").
    a_rows = [
        ("a", 4 * DAY + 9 * HOUR, "milk", 2.0, True),  # Monday morning trip, two lines
        ("a", 4 * DAY + 9 * HOUR + 60, "bread", 3.0, False),
        ("a", 3 * DAY + 18 * HOUR, "milk", 5.0, False),  # Sunday evening trip
        ("a", 151 * DAY + 13 * HOUR, "tea", 10.0, True),  # Monday afternoon, inside the last 91 days
        ("a", 300 * DAY, "tea", 99.0, True),  # after the end: ignored
    ]
    b_rows = [("b", 190 * DAY + 20 * HOUR, "milk", 4.0, False)]
    ids, x = segment_features(_lines(a_rows + b_rows), 200 * DAY)
    assert ids.tolist() == ["a", "b"]
    f = {name: x[:, j] for j, name in enumerate(FEATURE_NAMES)}
    tenure_a = (200 - 3 - 18 / 24) / 7
    np.testing.assert_allclose(f["recency_days"], [49 - 13 / 24, 10 - 20 / 24])
    np.testing.assert_allclose(f["trips_per_week"], [3 / tenure_a, 1 / 4])  # b: at least four weeks
    np.testing.assert_allclose(f["spend_per_week"], [20 / tenure_a, 4 / 4])
    np.testing.assert_allclose(f["basket_lines"], [4 / 3, 1])
    np.testing.assert_allclose(f["category_breadth"], [3, 1])
    np.testing.assert_allclose(f["promo_share"], [2 / 4, 0])
    np.testing.assert_allclose(f["day_part"], [1 / 3 - 1 / 3, 1])  # evening minus morning share of trips
    np.testing.assert_allclose(f["weekend_share"], [1 / 3, 0])
    weeks_before = (200 - 91 - 3 - 18 / 24) / 7
    expected_trend = np.log1p(10 / 13) - np.log1p(10 / weeks_before)
    np.testing.assert_allclose(f["trend"], [expected_trend, 0.0])  # b is too new for a trend


def test_missing_columns_give_constant_features_and_zero_weight() -> None:
    rng = np.random.default_rng(1)
    rows = [
        (f"h{i}", float(rng.uniform(0, 300)) * DAY, "", float(rng.gamma(2, 10)), False) for i in range(400)
    ]
    rows += [
        (f"h{i}", float(rng.uniform(0, 300)) * DAY, "", float(rng.gamma(2, 10)), False) for i in range(400)
    ]
    lines = _lines(rows, lacks=("category", "promoted", "time_of_day"))
    ids, x = segment_features(lines, 301 * DAY)
    for name in ("category_breadth", "promo_share", "day_part"):
        assert np.ptp(x[:, FEATURE_NAMES.index(name)]) == 0
    model = fit_segments(ids, x, k=3, missing=["category_breadth"])
    assert model.card.missing_features == ["category_breadth"]  # as told
    lacking = {"category_breadth", "promo_share", "day_part"}
    assert lacking <= set(model.card.unused_features)  # constant, so unused as well
    for segment in model.segments:  # nothing is said about what the source does not record
        assert "promot" not in segment.description
        assert "categor" not in segment.description


def test_unequal_columns_and_no_lines_are_errors() -> None:
    with pytest.raises(DatasetError, match="differ in length"):
        BasketLines(np.array(["a"]), np.array([1.0, 2.0]), np.array(["x"]), np.array([1.0]), np.array([True]))
    with pytest.raises(DatasetError, match="no basket lines"):
        segment_features(_lines([("a", 10 * DAY, "x", 1.0, False)]), 5 * DAY)


def _planted(seed: int, per_cluster: int = 150) -> tuple[npt.NDArray[np.str_], F64, npt.NDArray[np.int64]]:
    """Three behaviours, far apart: weekly big promoted baskets, daily small full-price evening trips,
    monthly weekend trips; every other feature is noise."""
    rng = np.random.default_rng(seed)
    n = 3 * per_cluster
    truth = np.repeat(np.arange(3), per_cluster)
    x = np.empty((n, len(FEATURE_NAMES)))
    col = {f: j for j, f in enumerate(FEATURE_NAMES)}
    x[:, col["recency_days"]] = rng.gamma(2.0, [3.0, 1.0, 15.0])[truth]
    x[:, col["trips_per_week"]] = np.array([1.0, 5.0, 0.25])[truth] * rng.lognormal(0, 0.1, n)
    x[:, col["spend_per_week"]] = np.array([80.0, 40.0, 10.0])[truth] * rng.lognormal(0, 0.1, n)
    x[:, col["basket_lines"]] = np.array([25.0, 3.0, 8.0])[truth] * rng.lognormal(0, 0.1, n)
    x[:, col["category_breadth"]] = rng.integers(20, 40, n)
    x[:, col["promo_share"]] = np.clip(np.array([0.5, 0.02, 0.1])[truth] + rng.normal(0, 0.03, n), 0, 1)
    x[:, col["day_part"]] = np.clip(np.array([-0.1, 0.9, 0.0])[truth] + rng.normal(0, 0.1, n), -1, 1)
    x[:, col["weekend_share"]] = np.clip(np.array([0.3, 0.2, 0.95])[truth] + rng.normal(0, 0.05, n), 0, 1)
    x[:, col["trend"]] = rng.normal(0, 0.1, n)
    ids = np.array([f"h{i:04d}" for i in range(n)])
    return ids, x, truth


def test_fit_recovers_planted_clusters_and_names_them() -> None:
    ids, x, truth = _planted(0)
    model = fit_segments(ids, x, seed=0, fitted_on="planted")
    assert model.card.k == 3  # chosen: the largest stable k
    assert model.card.stability is not None
    assert model.card.stability >= 0.99
    labels = assign(model, x)
    assert adjusted_rand_index(labels, truth) == pytest.approx(1.0)
    names = {s.name for s in model.segments}
    assert len(names) == 3
    by_truth = {int(t): model.segments[int(np.bincount(labels[truth == t]).argmax())] for t in range(3)}
    assert by_truth[0].name == "weekly promotion-driven shoppers, big-basket"
    assert by_truth[1].name == "several-times-a-week evening shoppers, small-basket"
    assert by_truth[2].name == "monthly weekend shoppers, low-spend"
    assert [s.households for s in model.segments] == [150, 150, 150]


def test_ids_are_stable_across_refits_shuffles_and_seeds() -> None:
    ids, x, _ = _planted(0)
    first = fit_segments(ids, x, k=3, seed=0)
    order = np.random.default_rng(5).permutation(ids.size)
    again = fit_segments(ids[order], x[order], k=3, seed=7)
    assert [s.id for s in again.segments] == [s.id for s in first.segments]
    by_household = dict(zip(ids, (first.segments[i].id for i in assign(first, x)), strict=True))
    assert all(
        by_household[h] == again.segments[i].id
        for h, i in zip(ids[order], assign(again, x[order]), strict=True)
    )
    # A refit on other households from the same behaviours keeps each behaviour's id via the previous model.
    ids2, x2, truth2 = _planted(1)
    refit = fit_segments(ids2, x2, k=3, seed=3, previous=first)
    first_of = {
        t: first.segments[int(np.bincount(assign(first, x2)[truth2 == t]).argmax())].id for t in range(3)
    }
    refit_of = {
        t: refit.segments[int(np.bincount(assign(refit, x2)[truth2 == t]).argmax())].id for t in range(3)
    }
    assert refit_of == first_of


def test_a_new_cluster_gets_a_new_id_when_matched_to_a_previous_model() -> None:
    ids, x, truth = _planted(0)
    two = fit_segments(ids[truth < 2], x[truth < 2], k=2, seed=0)
    three = fit_segments(ids, x, k=3, seed=0, previous=two)
    assert {s.id for s in two.segments} < {s.id for s in three.segments}
    assert len({s.id for s in three.segments}) == 3


def test_json_round_trip_assigns_the_same() -> None:
    ids, x, _ = _planted(2)
    model = fit_segments(ids, x, k=3, seed=0, fitted_on="planted")
    back = segment_model_from_json(segment_model_to_json(model))
    assert back == model
    np.testing.assert_array_equal(assign(back, x), assign(model, x))
    with pytest.raises(DatasetError, match="segment model"):
        segment_model_from_json(b'{"format": "other"}')
    with pytest.raises(DatasetError, match="expected"):
        assign(model, x[:, :3])


def test_words_never_touch_declined_inferences() -> None:
    vocabulary = " ".join(w for words in WORDS.values() for w in words)
    assert forbidden_in(vocabulary) == []
    assert forbidden_in("an income-rich family") == ["income", "rich", "family"]
    for per_week in (0.05, 0.2, 0.5, 1.0, 3.0):
        assert forbidden_in(frequency_word(per_week)) == []
    for seed in range(3):
        ids, x, _ = _planted(seed, per_cluster=60)
        model: SegmentModel = fit_segments(ids, x, seed=seed)
        for s in model.segments:
            text = f"{s.name} {s.description}".lower()
            assert not [w for w in FORBIDDEN_WORDS if f" {w}" in f" {text}"], text


def test_names_are_unique_and_short() -> None:
    assert segment_name(["weekly"], set(), "seg-1") == "weekly shoppers"  # close to average on everything
    assert segment_name(["weekly"], {"weekly shoppers"}, "seg-4") == "weekly shoppers (seg-4)"
    words = ["monthly", "lapsing", "declining", "weekend"]
    assert segment_name(words, set(), "seg-1") == "monthly lapsing shoppers, declining"
    assert segment_name(words, {"monthly lapsing shoppers, declining"}, "seg-2") == (
        "monthly lapsing shoppers, declining, weekend"
    )
    assert segment_name(["weekly", "evening"], set(), "seg-1") == "weekly evening shoppers"


def test_adjusted_rand_index_known_values() -> None:
    assert adjusted_rand_index([0, 0, 1, 1], [1, 1, 0, 0]) == pytest.approx(1.0)
    # scikit-learn's documented example: ARI([0, 0, 1, 2], [0, 0, 1, 1]) = 0.5714...
    assert adjusted_rand_index([0, 0, 1, 2], [0, 0, 1, 1]) == pytest.approx(0.5714285714)
    assert adjusted_rand_index([0, 0, 0, 0], [0, 1, 2, 3]) == pytest.approx(0.0)


def test_lines_from_a_history(small_history: PurchaseHistory) -> None:
    lines = basket_lines_from_history(small_history)
    assert lines.size == small_history.n_lines
    assert lines.lacks == ()
    assert lines.promoted.any()
    ids, x = segment_features(lines, float(small_history.last_day + 1) * DAY)
    assert ids.size == len(small_history.households)
    assert np.isfinite(x).all()
