"""The smart shopping list: urgency buckets, reasons in words from the household's own rhythm, and the
end-to-end list for one household with the trained models."""

from __future__ import annotations

import re

import numpy as np

from models.features import FEATURE_NAMES, F, summarise
from models.inference import NextBasketModel, NextPurchaseModel
from models.next_purchase import N_BINS, scores_from_hazard
from models.shopping_list import (
    ShoppingListItem,
    build_shopping_list,
    household_shopping_list,
    list_order,
    past_gap,
    reason,
    shown_days_left,
)

from .conftest import Trained

NOW = 19_725.0  # a Wednesday


def _row(**values: float) -> np.ndarray:
    x = np.full(len(FEATURE_NAMES), np.nan, dtype=np.float32)
    for name, value in values.items():
        x[F[name]] = value
    return x


def test_reason_when_it_is_due() -> None:
    x = _row(
        n_purchases=12, interval_median=3, recency_days=4, trip_share=0.4, qty_median=1, last_qty_ratio=1
    )
    assert reason("milk", x, NOW, p7=0.9) == "you buy milk about every 3 days; last time was 4 days ago"
    weekly = _row(n_purchases=6, interval_median=14, recency_days=13, qty_median=1, last_qty_ratio=1)
    assert reason("coffee", weekly, NOW) == "you buy coffee about every 2 weeks; last time was 13 days ago"


def test_reason_when_the_last_quantity_was_small() -> None:
    x = _row(
        n_purchases=8, interval_median=10, recency_days=2, qty_median=3, last_qty_ratio=1 / 3, trip_share=0.3
    )
    assert reason("water", x, NOW) == "last time you bought 1 water instead of your usual 3"


def test_reason_when_it_is_in_most_trips_or_on_this_weekday() -> None:
    often = _row(
        n_purchases=20, interval_median=7, recency_days=1, qty_median=1, last_qty_ratio=1, trip_share=0.7
    )
    assert reason("bread", often, NOW) == "bread is in 7 of every 10 of your trips"
    weekday = _row(
        n_purchases=9,
        interval_median=7,
        recency_days=1,
        qty_median=1,
        last_qty_ratio=1,
        trip_share=0.3,
        dow_share_now=0.8,
    )
    assert reason("fish", weekday, NOW) == "you usually buy fish on Wednesdays"
    rare = _row(n_purchases=1, recency_days=30, qty_median=1, last_qty_ratio=1, trip_share=0.05)
    assert reason("honey", rare, NOW) == "you bought honey once; last time was 30 days ago"


def test_reasons_only_talk_about_the_households_own_rhythm() -> None:
    allowed = re.compile(
        r"^(you (buy|used to buy) \S+ (every day|about every \d+ (days|weeks)); last time was (today|\d+ days? ago)"
        r"|last time you bought [\d.]+ \S+ instead of your usual [\d.]+"
        r"|\S+ is in \d+ of every 10 of your trips"
        r"|you usually buy \S+ on \w+days"
        r"|you bought \S+ (once|\d+ times); last time was (today|\d+ days? ago))$"
    )
    rng = np.random.default_rng(0)
    for _ in range(300):
        x = _row(
            n_purchases=float(rng.integers(1, 30)),
            interval_median=float(rng.integers(1, 60)),
            recency_days=float(rng.integers(0, 90)),
            qty_median=float(rng.integers(1, 4)),
            last_qty_ratio=float(rng.uniform(0.2, 2)),
            trip_share=float(rng.uniform(0, 1)),
            dow_share_now=float(rng.uniform(0, 1)),
        )
        assert allowed.match(reason("cat-food", x, NOW)), reason("cat-food", x, NOW)


def test_days_left_and_the_reason_agree_past_the_usual_gap() -> None:
    """Issue #17: "every 5 days; last time 12 days ago" beside "about 2 days left" read as a contradiction;
    so did "every 7 days; 33 days ago" beside "12 days left"."""
    soft_drinks = _row(n_purchases=20, interval_median=5, recency_days=12, qty_median=1, last_qty_ratio=1)
    assert reason("soft drinks", soft_drinks, NOW, p7=0.8).startswith(
        "you buy soft drinks about every 5 days"
    )
    assert shown_days_left(2.0, 0.8, past_gap(20, 5, 12)) == 0.0  # due now, not "2 days left"
    soup = _row(n_purchases=15, interval_median=7, recency_days=33, qty_median=1, last_qty_ratio=1)
    assert (
        reason("soup", soup, NOW, p7=0.2)
        == "you used to buy soup about every 7 days; last time was 33 days ago"
    )
    assert shown_days_left(12.0, 0.2, past_gap(15, 7, 33)) is None  # a lapsed habit: no number
    # Before the gap the model's expected days stand; a category with no forecast has none.
    assert shown_days_left(3.5, 0.6, past_gap(20, 7, 3)) == 3.5
    assert shown_days_left(None, None, False) is None
    assert not past_gap(1, float("nan"), 40)


def test_coming_up_is_sorted_by_days_left() -> None:
    items = [
        ShoppingListItem("a", "upcoming", 5.0, 0.9, "r"),
        ShoppingListItem("b", "usual", None, 0.8, "r"),
        ShoppingListItem("c", "upcoming", None, 0.95, "r"),
        ShoppingListItem("d", "upcoming", 1.0, 0.2, "r"),
        ShoppingListItem("e", "urgent", 0.0, 0.5, "r"),
        ShoppingListItem("f", "usual", None, 0.9, "r"),
    ]
    assert [i.category for i in sorted(items, key=list_order)] == ["e", "d", "a", "c", "f", "b"]


def test_urgency_buckets_and_order() -> None:
    # Three own categories: certain today, likely within a week, not soon; one never bought.
    hazard = np.zeros((4, N_BINS))
    hazard[0, 0] = 0.9
    hazard[1, 3] = 0.8
    hazard[2, 7] = 0.5
    x = np.stack(
        [
            _row(
                n_purchases=10,
                interval_median=3,
                recency_days=3,
                qty_median=1,
                last_qty_ratio=1,
                trip_share=0.5,
            ),
            _row(
                n_purchases=5,
                interval_median=7,
                recency_days=2,
                qty_median=1,
                last_qty_ratio=1,
                trip_share=0.2,
            ),
            _row(n_purchases=1, recency_days=5, qty_median=1, last_qty_ratio=1, trip_share=0.1),
            _row(n_purchases=0),
        ]
    )
    items = build_shopping_list(
        ["milk", "eggs", "jam", "caviar"],
        [0, 1, 2, 3],
        x,
        [0.3, 0.6, 0.5, 0.9],
        scores_from_hazard(hazard),
        NOW,
    )
    assert [(i.category, i.urgency) for i in items] == [
        ("milk", "urgent"),
        ("eggs", "upcoming"),
        ("jam", "usual"),
    ]
    assert items[2].days_left is None  # one purchase: no forecast
    assert items[0].days_left == 0
    assert [i.probability for i in items] == [0.3, 0.6, 0.5]


def test_a_household_list_end_to_end(trained: Trained) -> None:
    stats = summarise(trained.history, trained.cutoff)
    household = int(np.argmax(stats.hh_trips))
    items = household_shopping_list(
        stats,
        household,
        float(trained.cutoff),
        NextPurchaseModel(trained.directory / "next_purchase"),
        NextBasketModel(trained.directory / "next_basket"),
        limit=8,
    )
    assert 0 < len(items) <= 8
    assert len({i.category for i in items}) == len(items)
    order = {"urgent": 0, "upcoming": 1, "usual": 2}
    assert [order[i.urgency] for i in items] == sorted(order[i.urgency] for i in items)
    for item in items:
        assert 0 <= item.probability <= 1
        assert item.category in item.reason
