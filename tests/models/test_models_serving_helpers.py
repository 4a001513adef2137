"""What the daemon's batch scoring relies on in `models`: the quantiles of the days until the next
purchase, the vectorised urgency buckets and list ranks (many households at once, the same lists as
`household_shopping_list` one household at a time), and a shelf with no picks at all."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models.features import F, summarise
from models.history import PurchaseHistory
from models.inference import load_models
from models.next_basket import basket_features, candidates
from models.next_purchase import BIN_EDGES, HORIZON_DAYS, MIN_PURCHASES, N_BINS, QUANTILES, scores_from_hazard
from models.shelf import PickStream, shelf_features
from models.shopping_list import household_shopping_list, list_ranks, past_gap, shown_days, urgencies

MODELS = load_models()


@given(arrays(np.float64, (5, N_BINS), elements=st.floats(0.0, 1.0)))
def test_quantiles_are_those_of_the_days_distribution_given_a_purchase(hazard: np.ndarray) -> None:
    scores = scores_from_hazard(hazard)
    for i in range(hazard.shape[0]):
        # By hand: survival per bin, each bin's mass spread evenly over its days (no features).
        alive, by_day = 1.0, []
        for k in range(N_BINS):
            mass = alive * hazard[i, k]
            width = BIN_EDGES[k + 1] - BIN_EDGES[k]
            by_day += [mass / width] * width
            alive *= 1 - hazard[i, k]
        cdf = np.cumsum(by_day)  # cdf[t] = P(T <= t)
        p_horizon = cdf[-1]
        if p_horizon < 1e-6:
            continue  # no purchase is likely at all: see the next test
        for j, q in enumerate(QUANTILES):
            expected = next(t for t in range(HORIZON_DAYS) if cdf[t] >= q * p_horizon - 1e-12)
            assert scores.days_quantiles[i, j] == expected
        assert scores.days_quantile(0.5)[i] == scores.expected_days[i]
        assert scores.days_quantile(0.1)[i] <= scores.days_quantile(0.5)[i] <= scores.days_quantile(0.9)[i]


def test_no_likely_purchase_puts_every_quantile_at_the_horizon() -> None:
    scores = scores_from_hazard(np.zeros((2, N_BINS)))
    assert (scores.days_quantiles == HORIZON_DAYS).all()


def test_batch_lists_are_the_one_household_lists(small_history: PurchaseHistory) -> None:
    cutoff = small_history.last_day - 20
    stats = summarise(small_history, cutoff)
    households = np.flatnonzero(stats.hh_trips >= 3)[:25]
    assert households.size >= 10
    cands = candidates(stats, households)
    x = basket_features(stats, cands, float(cutoff))
    pair_x = np.ascontiguousarray(x[:, : len(F)])
    probability = MODELS.next_basket.score(x).probability
    purchase = MODELS.next_purchase.score(pair_x)
    n = pair_x[:, F["n_purchases"]]
    p7 = purchase.p_within_days(7)
    urgency = urgencies(n, purchase.p_within_days(2), p7)
    gap, recency = pair_x[:, F["interval_median"]], pair_x[:, F["recency_days"]]
    past = [past_gap(float(a), float(b), float(c)) for a, b, c in zip(n, gap, recency, strict=True)]
    days = shown_days(np.where(n >= MIN_PURCHASES, purchase.expected_days, np.nan), p7, past)
    rank = list_ranks(cands.query, n, probability, urgency, limit=8, days_left=days)
    for q, household in enumerate(households):
        rows = np.flatnonzero((cands.query == q) & (rank > 0))
        batch = [(stats.categories[cands.category[r]], str(urgency[r])) for r in rows[np.argsort(rank[rows])]]
        one = household_shopping_list(
            stats, int(household), float(cutoff), MODELS.next_purchase, MODELS.next_basket, limit=8
        )
        assert batch == [(i.category, i.urgency) for i in one]
        assert sorted(rank[rows]) == list(range(1, len(rows) + 1))


def test_urgency_needs_a_forecast() -> None:
    assert list(urgencies([5, 5, 5, 1, 0], [0.6, 0.2, 0.1, 0.9, 0.9], [0.9, 0.7, 0.3, 0.9, 0.9])) == [
        "urgent", "upcoming", "usual", "usual", "usual",
    ]  # fmt: skip


def test_a_shelf_with_no_picks_at_all_gets_features() -> None:
    stream = PickStream.build(("s", "t"), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    x = shelf_features(stream, np.array([0, 1]), 20_000 * 1440 + 600.5, np.array([3.0, 0.0]))
    minutes = MODELS.shelf_depletion.score(x).minutes
    assert np.isfinite(minutes).all()
    assert minutes[1] == 0.0  # an empty shelf is empty now
