"""The feature builder: every feature on a hand-made history against a hand computation, and the
vectorised builder against a plain-Python reference on simulated histories."""

from __future__ import annotations

import itertools
import statistics
from datetime import date

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.features import FEATURE_NAMES, F, pair_features, summarise
from models.history import COLUMN_DTYPES, PurchaseHistory, epoch_day, make_history, weekday

D = epoch_day(date(2024, 1, 1))  # a Monday
NOW = D + 16  # a Wednesday


def _history(rows: list[tuple[str, str, int, float, float, bool]]) -> PurchaseHistory:
    """Rows of (household, category, day offset, qty, price, promo); one basket per household-day."""
    households = sorted({r[0] for r in rows})
    categories = sorted({r[1] for r in rows})
    return make_history(
        households,
        categories,
        {
            "household": [households.index(r[0]) for r in rows],
            "category": [categories.index(r[1]) for r in rows],
            "day": [D + r[2] for r in rows],
            "minute": [600] * len(rows),
            "basket": [households.index(r[0]) * 1000 + r[2] for r in rows],
            "qty": [r[3] for r in rows],
            "price": [r[4] for r in rows],
            "promo": [r[5] for r in rows],
        },
    )


HAND = _history(
    [
        ("a", "milk", 0, 1, 1.0, False),
        ("a", "milk", 2, 2, 0.8, True),
        ("a", "bread", 2, 1, 2.0, False),
        ("a", "milk", 6, 1, 1.0, False),
        ("a", "bread", 6, 1, 2.0, False),
        ("a", "milk", 9, 1, 1.0, False),
        ("a", "milk", 13, 1, 1.0, False),
        ("a", "milk", 13, 1, 1.0, False),  # a second line the same day: one purchase of qty 2
        ("a", "milk", 20, 5, 1.0, False),  # after the cutoff: ignored
        ("b", "milk", 1, 1, 1.0, False),
        ("b", "milk", 8, 1, 1.0, False),
        ("c", "bread", 5, 1, 1.5, True),
        ("c", "eggs", 5, 1, 2.6, False),
    ]
)


def _row(household: str, category: str) -> dict[str, float]:
    stats = summarise(HAND, until_day=NOW)
    x = pair_features(
        stats, [HAND.households.index(household)], [HAND.categories.index(category)], float(NOW)
    )[0]
    return {name: float(x[i]) for name, i in F.items()}


def test_every_feature_of_a_regular_pair_by_hand() -> None:
    milk = _row("a", "milk")
    gaps = [2, 4, 3, 4]  # purchase days 0, 2, 6, 9, 13
    expected = {
        "n_purchases": 5,
        "purchases_28d": 5,
        "purchases_91d": 5,
        "interval_median": 3.5,
        "interval_mean": 13 / 4,
        "interval_cv": statistics.pstdev(gaps) / (13 / 4),
        "interval_last": 4,
        "trend": (4 + 3 + 4) / 3 / (13 / 4),
        "recency_days": 16 - 13,
        "recency_ratio": 3 / 3.5,
        "tenure_days": 16,
        "purchase_rate_30d": 30 * 5 / 16,
        "qty_median": 1,  # quantities per purchase 1, 2, 1, 1, 2
        "last_qty_ratio": 2 / 1,
        "trip_share": 5 / 5,
        "basket_share": 5 / 5,
        "frequency_rank": 1,  # milk in 5 baskets, bread in 2
        "trips_since_last": 0,
        "share_of_wallet": (1 + 1.6 + 1 + 1 + 2) / (1 + 1.6 + 1 + 1 + 2 + 2 + 2),
        "promo_share": 1 / 5,
        "promo_sensitivity": 1 / 5 - 1 / 7,  # milk: 1 of 7 purchase days on promotion (a: 5, b: 2)
        "dow_share_now": 2 / 5,  # Wednesdays: days 2 and 9
        "dow_concentration": 2 / 5,  # Mon 1, Wed 2, Sun 2
        "category_popularity": 2 / 3,
        "household_trips": 5,
        "household_trip_interval": 3.5,
        "household_recency": 3,
        "household_categories": 2,
        # Trips on Mon (day 0), Wed (2, 9), Sun (6, 13); now is a Wednesday.
        "trip_dow_share_0": 2 / 5,
        "trip_dow_share_1": 0,
        "trip_dow_share_2": 0,
        "trip_dow_share_3": 0,
        "trip_dow_share_4": 2 / 5,
        "trip_dow_share_5": 1 / 5,
        "trip_dow_share_6": 0,
    }
    assert set(expected) == set(FEATURE_NAMES)
    for name, value in expected.items():
        assert milk[name] == pytest.approx(value, rel=1e-6), name


def test_a_pair_with_few_purchases_has_undefined_interval_features() -> None:
    bread = _row("a", "bread")  # days 2 and 6
    assert bread["n_purchases"] == 2
    assert bread["interval_median"] == bread["interval_mean"] == bread["interval_last"] == 4
    assert np.isnan(bread["interval_cv"])
    assert np.isnan(bread["trend"])
    assert bread["trips_since_last"] == 2  # trips on days 9 and 13
    assert bread["trip_share"] == pytest.approx(2 / 5)
    once = _row("c", "bread")
    assert once["n_purchases"] == 1
    assert np.isnan(once["interval_median"])
    assert np.isnan(once["recency_ratio"])
    assert once["recency_days"] == 11
    assert once["promo_share"] == 1
    assert once["promo_sensitivity"] == pytest.approx(1 - 1 / 3)  # bread: 1 of 3 purchase days
    assert once["category_popularity"] == pytest.approx(2 / 3)
    assert np.isnan(once["household_trip_interval"])


def test_a_pair_never_bought_is_a_candidate_with_household_context() -> None:
    never = _row("b", "bread")
    assert never["n_purchases"] == 0
    for name in (
        "interval_median",
        "recency_days",
        "tenure_days",
        "qty_median",
        "promo_share",
        "dow_share_now",
    ):
        assert np.isnan(never[name]), name
    assert never["trip_share"] == 0
    assert never["share_of_wallet"] == 0
    assert never["purchase_rate_30d"] == 0
    assert never["household_trips"] == 2
    assert never["household_recency"] == 16 - 8
    assert never["category_popularity"] == pytest.approx(2 / 3)


def test_basket_counts_for_the_baseline() -> None:
    stats = summarise(HAND, until_day=NOW)
    a, milk = HAND.households.index("a"), HAND.categories.index("milk")
    p = stats.pair_index([a], [milk])[0]
    assert stats.baskets[p] == 5  # one basket per household-day in HAND
    assert stats.hh_baskets[a] == 5
    assert stats.pair_index([HAND.households.index("b")], [HAND.categories.index("bread")])[0] == -1


def test_now_can_differ_per_row() -> None:
    stats = summarise(HAND, until_day=NOW)
    a, milk = HAND.households.index("a"), HAND.categories.index("milk")
    x = pair_features(stats, [a, a], [milk, milk], [NOW, NOW + 5])
    assert x[1, F["recency_days"]] - x[0, F["recency_days"]] == 5
    assert x[0, F["dow_share_now"]] == pytest.approx(2 / 5)  # Wednesdays: days 2 and 9
    assert weekday(np.array([NOW + 5]))[0] == 0
    assert x[1, F["dow_share_now"]] == pytest.approx(1 / 5)  # Mondays: day 0


# ---------------------------------------------------------------------------------------------------
# The vectorised builder against a direct, slow implementation of the definitions.


def _reference(history: PurchaseHistory, until: int, h: int, c: int, now: float) -> dict[str, float]:
    nan = float("nan")
    lines = [i for i in range(history.n_lines) if history.household[i] == h and history.day[i] < until]
    trips = sorted({int(history.day[i]) for i in lines})
    by_day: dict[int, list[int]] = {}
    for i in lines:
        if history.category[i] == c:
            by_day.setdefault(int(history.day[i]), []).append(i)
    days = sorted(by_day)
    n = len(days)
    qty = [sum(float(history.qty[i]) for i in by_day[d]) for d in days]
    promo = [any(bool(history.promo[i]) for i in by_day[d]) for d in days]
    gaps = [b - a for a, b in itertools.pairwise(days)]
    spend = sum(float(history.qty[i]) * float(history.price[i]) for d in days for i in by_day[d])
    hh_spend = sum(float(history.qty[i]) * float(history.price[i]) for i in lines)
    all_lines = [i for i in range(history.n_lines) if history.day[i] < until]
    buyers = {int(history.household[i]) for i in all_lines if history.category[i] == c}
    active = {int(history.household[i]) for i in all_lines}
    cat_days = {
        (int(history.household[i]), int(history.day[i])) for i in all_lines if history.category[i] == c
    }
    cat_promo = {
        (int(history.household[i]), int(history.day[i]))
        for i in all_lines
        if history.category[i] == c and history.promo[i]
    }
    wd = int(weekday(np.array([now]))[0])
    baskets_h = {int(history.basket[i]) for i in lines}
    baskets_c = {int(history.basket[i]) for d in days for i in by_day[d]}
    per_category = {
        cat: len({int(history.basket[i]) for i in lines if history.category[i] == cat})
        for cat in {int(history.category[i]) for i in lines}
    }
    # 1 + categories in more baskets, or as many and a lower code.
    rank = 1 + sum(
        1 for cat, k in per_category.items() if k > len(baskets_c) or (k == len(baskets_c) and cat < c)
    )
    trip_wd = [int(weekday(np.array([t]))[0]) for t in trips]
    mean = statistics.fmean(gaps) if gaps else nan
    median = statistics.median(gaps) if gaps else nan
    promo_share = sum(promo) / n if n else nan
    return {
        "n_purchases": n,
        "purchases_28d": sum(d >= until - 28 for d in days),
        "purchases_91d": sum(d >= until - 91 for d in days),
        "interval_median": median,
        "interval_mean": mean,
        "interval_cv": statistics.pstdev(gaps) / mean if n >= 3 else nan,
        "interval_last": gaps[-1] if gaps else nan,
        "trend": statistics.fmean(gaps[-3:]) / mean if n >= 3 else nan,
        "recency_days": now - days[-1] if n else nan,
        "recency_ratio": (now - days[-1]) / median if n >= 2 else nan,
        "tenure_days": now - days[0] if n else nan,
        "purchase_rate_30d": 30 * n / (now - trips[0]) if trips and now > trips[0] else nan,
        "qty_median": statistics.median(qty) if n else nan,
        "last_qty_ratio": qty[-1] / statistics.median(qty) if n else nan,
        "trip_share": n / len(trips) if trips else nan,
        "basket_share": len(baskets_c) / len(baskets_h) if baskets_h else nan,
        "frequency_rank": rank if n else nan,
        "trips_since_last": sum(t > days[-1] for t in trips) if n else nan,
        "share_of_wallet": spend / hh_spend if hh_spend > 0 else nan,
        "promo_share": promo_share,
        "promo_sensitivity": promo_share - len(cat_promo) / len(cat_days) if n else nan,
        "dow_share_now": sum(int(weekday(np.array([d]))[0]) == wd for d in days) / n if n else nan,
        "dow_concentration": max(np.bincount(weekday(np.array(days)), minlength=7)) / n if n else nan,
        "category_popularity": len(buyers) / max(1, len(active)),
        "household_trips": len(trips),
        "household_trip_interval": statistics.median([b - a for a, b in itertools.pairwise(trips)])
        if len(trips) >= 2
        else nan,
        "household_recency": now - trips[-1] if trips else nan,
        "household_categories": len({int(history.category[i]) for i in lines}),
        **{
            f"trip_dow_share_{j}": trip_wd.count((wd + j) % 7) / len(trips) if trips else nan
            for j in range(7)
        },
    }


def _compare(history: PurchaseHistory, until: int, hs: list[int], cs: list[int], now: float) -> None:
    stats = summarise(history, until_day=until)
    x = pair_features(stats, hs, cs, now)
    for row, (h, c) in enumerate(zip(hs, cs, strict=True)):
        expected = _reference(history, until, h, c, now)
        for name, i in F.items():
            got, want = float(x[row, i]), expected[name]
            if np.isnan(want):
                assert np.isnan(got), (h, c, name, got)
            else:
                assert got == pytest.approx(want, rel=1e-5, abs=1e-6), (h, c, name, got, want)


def test_vectorised_equals_reference_on_simulated_history(small_history: PurchaseHistory) -> None:
    few = np.isin(small_history.household, np.arange(12))
    history = small_history.select(few)
    until = history.first_day + 150
    rng = np.random.default_rng(0)
    hs = rng.integers(0, 12, 60).tolist()
    cs = rng.integers(0, len(history.categories), 60).tolist()
    _compare(history, until, hs, cs, until + 3.0)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 2),
            st.integers(0, 40),
            st.sampled_from([1.0, 2.0, 0.5]),
            st.sampled_from([0.0, 1.0, 2.5]),
            st.booleans(),
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 45),
    st.integers(0, 10),
)
def test_vectorised_equals_reference_on_random_histories(
    rows: list[tuple[int, int, int, float, float, bool]], until_offset: int, ahead: int
) -> None:
    columns = {name: np.zeros(len(rows), dtype=dtype) for name, dtype in COLUMN_DTYPES.items()}
    columns["household"] = np.array([r[0] for r in rows])
    columns["category"] = np.array([r[1] for r in rows])
    columns["day"] = np.array([D + r[2] for r in rows])
    columns["basket"] = np.array([r[0] * 1000 + r[2] for r in rows])
    columns["qty"] = np.array([r[3] for r in rows])
    columns["price"] = np.array([r[4] for r in rows])
    columns["promo"] = np.array([r[5] for r in rows])
    history = make_history(["h0", "h1", "h2", "h3"], ["c0", "c1", "c2"], columns)
    hs = [h for h in range(4) for _ in range(3)]
    cs = [c for _ in range(4) for c in range(3)]
    _compare(history, D + until_offset, hs, cs, float(D + until_offset + ahead))
