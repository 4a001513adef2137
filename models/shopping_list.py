"""The smart shopping list: a household's next-basket candidates, ranked, each with its urgency, the days
left until it usually buys it again, and a reason in words.

Items are the household's own categories (never-bought candidates are left out: the list is about what
it is running out of, and a reason must be about its own rhythm). The top ``limit`` by P(on the next
trip) are kept and ordered urgent -> upcoming -> usual, then by probability:

- **urgent**: P(bought within 2 days) >= 0.5;
- **upcoming**: P(bought within 7 days) >= 0.5;
- **usual**: the rest (bought often, not due yet).

Reasons are built from the features that put the item on the list, in this order of precedence:
it is due (time since last >= 0.8 x its usual gap), the last quantity was small (<= 0.6 x usual), it is
in at least half of the household's trips, the household usually buys it on today's weekday; else how
often it bought it. They only ever talk about the household's own purchases (counts, gaps, days,
quantities) and never infer anything about the household.

**Days left agree with the reason.** Past its usual gap (time since last >= the gap) an item is *due*:
when the model still expects it within a week (P(within 7 days) >= 0.5) the list says "due now" (0 days
left), not the model's "about 2 more days" beside "every 5 days; last time 12 days ago"; when it does
not (the habit has lapsed), the reason says "you used to buy ..." and the list gives no number, rather
than "12 days left" beside "every 7 days; last time 33 days ago". Before the gap, days left are the
model's expected days (`shown_days_left`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from models.features import F, PairStats
from models.inference import NextBasketScores
from models.next_basket import basket_features, candidates
from models.next_purchase import MIN_PURCHASES, NextPurchaseScores

Urgency = Literal["urgent", "upcoming", "usual"]
URGENCY_ORDER: dict[str, int] = {"urgent": 0, "upcoming": 1, "usual": 2}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DUE_RATIO = 0.8
SMALL_LAST_QTY = 0.6
FREQUENT_TRIP_SHARE = 0.5
WEEKDAY_HABIT = 0.5


def past_gap(n_purchases: float, gap: float, recency: float) -> bool:
    """Has the household gone longer than its usual gap without buying it (with a forecast to speak of)?"""
    return n_purchases >= MIN_PURCHASES and not math.isnan(gap) and not math.isnan(recency) and recency >= gap


def shown_days_left(expected: float | None, p7: float | None, past: bool) -> float | None:
    """The days left a shopper sees (module docstring): due now, no number for a lapsed habit, else the
    model's expected days."""
    if expected is None or math.isnan(expected):
        return None
    if past:
        return 0.0 if p7 is not None and p7 >= 0.5 else None
    return expected


@dataclass(frozen=True, slots=True)
class ShoppingListItem:
    category: str
    urgency: Urgency
    days_left: float | None  # expected days until it is bought again (None: too few purchases to say)
    probability: float  # P(on the next trip)
    reason: str


def _days(value: float) -> str:
    days = round(value)
    if days <= 0:
        return "today"
    if days == 1:
        return "1 day"
    return f"{days} days"


def _every(days: float) -> str:
    if days < 1.5:
        return "every day"
    if days >= 13.5 and round(days / 7) >= 2:
        return f"about every {round(days / 7)} weeks"
    return f"about every {round(days)} days"


def _quantity(value: float) -> str:
    return f"{round(value, 1):g}"


_REASON_COLUMNS = (
    "n_purchases", "interval_median", "recency_days", "last_qty_ratio", "qty_median", "trip_share",
    "dow_share_now",
)  # fmt: skip


_REASON_INDEX = [F[name] for name in _REASON_COLUMNS]


def reason(category: str, features: npt.NDArray[np.float32], now: float, p7: float = math.nan) -> str:
    """A reason in words from one row of pair features (`models.features.FEATURE_NAMES`) and the model's
    P(bought within 7 days) (NaN: none)."""
    return reasons([category], features[np.newaxis, :], now, [p7])[0]


def reasons(
    categories: Sequence[str],
    features: npt.NDArray[np.float32],
    now: float,
    p7: Sequence[float] | npt.NDArray[np.float64] | None = None,
) -> list[str]:
    """`reason` for each row of a pair-feature matrix (one bulk conversion to Python floats: the scoring
    step words thousands of reasons)."""
    values: list[list[float]] = features[:, _REASON_INDEX].astype(np.float64).tolist()
    sevens: list[float] = (
        [math.nan] * len(values) if p7 is None else np.asarray(p7, dtype=np.float64).tolist()
    )
    return [
        _reason(category, *row, now=now, p7=seven)
        for category, row, seven in zip(categories, values, sevens, strict=True)
    ]


def _reason(
    category: str,
    n_f: float,
    gap: float,
    recency: float,
    last_ratio: float,
    qty_median: float,
    trip_share: float,
    dow_now: float,
    *,
    now: float,
    p7: float = math.nan,
) -> str:
    n = int(n_f)
    last_ago = "today" if round(recency) <= 0 else f"{_days(recency)} ago"
    if past_gap(n_f, gap, recency) and not p7 >= 0.5:  # NaN (no forecast) is not "likely this week"
        return f"you used to buy {category} {_every(gap)}; last time was {last_ago}"
    if n >= MIN_PURCHASES and not math.isnan(gap) and recency >= DUE_RATIO * gap:
        return f"you buy {category} {_every(gap)}; last time was {last_ago}"
    if n >= 3 and last_ratio <= SMALL_LAST_QTY:
        last = last_ratio * qty_median
        return (
            f"last time you bought {_quantity(last)} {category} instead of your usual {_quantity(qty_median)}"
        )
    if n >= 3 and trip_share >= FREQUENT_TRIP_SHARE:
        tenths = round(10 * trip_share)
        return f"{category} is in {tenths} of every 10 of your trips"
    if n >= 4 and dow_now >= WEEKDAY_HABIT:
        day = WEEKDAYS[int(np.floor(now) + 3) % 7]
        return f"you usually buy {category} on {day}s"
    times = "once" if n == 1 else f"{n} times"
    return f"you bought {category} {times}; last time was {last_ago}"


def urgencies(n_purchases: npt.ArrayLike, p2: npt.ArrayLike, p7: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """The urgency bucket per row: urgent (P(within 2 days) >= 0.5), upcoming (P(within 7 days) >= 0.5),
    else usual; only pairs with a forecast (`MIN_PURCHASES` purchase days) can be urgent or upcoming."""
    forecast = np.asarray(n_purchases, dtype=np.float64) >= MIN_PURCHASES
    p2a, p7a = np.asarray(p2, dtype=np.float64), np.asarray(p7, dtype=np.float64)
    return np.where(
        forecast & (p2a >= 0.5), "urgent", np.where(forecast & (p7a >= 0.5), "upcoming", "usual")
    ).astype(np.str_)


def shown_days(expected: npt.ArrayLike, p7: npt.ArrayLike, past: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """`shown_days_left` for many rows at once, NaN for "no number"."""
    e = np.asarray(expected, dtype=np.float64)
    seven = np.asarray(p7, dtype=np.float64)
    return np.where(np.asarray(past, dtype=bool), np.where(seven >= 0.5, 0.0, np.nan), e)


def list_ranks(
    query: npt.ArrayLike,
    n_purchases: npt.ArrayLike,
    probability: npt.ArrayLike,
    urgency: npt.ArrayLike,
    limit: int = 10,
    days_left: npt.ArrayLike | None = None,
) -> npt.NDArray[np.int64]:
    """Many households' lists at once: each candidate row's 1-based place on its query's list, 0 when it
    is not on it. Per query the household's own categories (``n_purchases`` > 0), top ``limit`` by
    probability (ties: row order), then ordered urgent -> upcoming -> usual; urgent and upcoming by the
    days left shown (`shown_days`; none last), then by probability rounded to 4 places as shown (ties: by
    probability, then row order): `build_shopping_list`'s order (`list_order`)."""
    q = np.asarray(query, dtype=np.int64)
    own = np.asarray(n_purchases, dtype=np.float64) > 0
    p = np.asarray(probability, dtype=np.float64)
    rows = np.arange(q.size)
    # Keep: own rows, top `limit` per query by probability (stable: row order breaks ties).
    order = np.lexsort((rows, -p, ~own, q))
    q_sorted = q[order]
    starts = np.searchsorted(q_sorted, q_sorted, side="left")
    keep = own[order] & (rows - starts < limit)
    chosen = order[keep]
    bucket = np.asarray([URGENCY_ORDER[str(u)] for u in np.asarray(urgency)[chosen]], dtype=np.int64)
    shown = np.round(p[chosen], 4)
    soon = np.zeros(chosen.size)
    if days_left is not None:
        days = np.asarray(days_left, dtype=np.float64)[chosen]
        soon = np.where(bucket < URGENCY_ORDER["usual"], np.where(np.isnan(days), np.inf, days), 0.0)
    order2 = np.lexsort((rows[chosen], -p[chosen], -shown, soon, bucket, q[chosen]))
    final = chosen[order2]
    q_final = q[final]
    place = np.arange(final.size) - np.searchsorted(q_final, q_final, side="left") + 1
    rank = np.zeros(q.size, dtype=np.int64)
    rank[final] = place
    return rank


def build_shopping_list(
    categories: Sequence[str],
    category: npt.ArrayLike,
    features: npt.NDArray[np.float32],
    probability: npt.ArrayLike,
    purchase: NextPurchaseScores,
    now: float,
    limit: int = 10,
) -> tuple[ShoppingListItem, ...]:
    """Ranked items for one household from its candidates' codes, pair features (FEATURE_NAMES columns),
    next-basket probabilities and next-purchase scores (one row each)."""
    codes = np.asarray(category, dtype=np.int64)
    p = np.asarray(probability, dtype=np.float64)
    own = features[:, F["n_purchases"]] > 0
    chosen = [i for i in np.argsort(-p, kind="stable") if own[i]][:limit]
    items = []
    for i in chosen:
        n = features[i, F["n_purchases"]]
        forecast = n >= MIN_PURCHASES
        p2, p7 = purchase.p_within_days(2)[i], purchase.p_within_days(7)[i]
        urgency: Urgency = "usual"
        if forecast and p2 >= 0.5:
            urgency = "urgent"
        elif forecast and p7 >= 0.5:
            urgency = "upcoming"
        name = categories[int(codes[i])]
        past = past_gap(
            float(n), float(features[i, F["interval_median"]]), float(features[i, F["recency_days"]])
        )
        expected = float(purchase.expected_days[i]) if forecast else None
        items.append(
            ShoppingListItem(
                category=name,
                urgency=urgency,
                days_left=shown_days_left(expected, float(p7), past),
                probability=round(float(p[i]), 4),
                reason=reason(name, features[i], now, float(p7) if forecast else math.nan),
            )
        )
    items.sort(key=list_order)
    return tuple(items)


def list_order(item: ShoppingListItem) -> tuple[int, float, float]:
    """Urgent, then coming up, then usual; within urgent and coming up the soonest first (no number last),
    then the likeliest; usual items by how likely they are on the next trip."""
    soon = URGENCY_ORDER[item.urgency] < URGENCY_ORDER["usual"]
    days = item.days_left if soon and item.days_left is not None else math.inf
    return URGENCY_ORDER[item.urgency], days if soon else 0.0, -item.probability


class PurchaseScorer(Protocol):
    def score(self, features: npt.NDArray[np.float32]) -> NextPurchaseScores: ...


class BasketScorer(Protocol):
    def score(self, features: npt.NDArray[np.float32]) -> NextBasketScores: ...


def household_shopping_list(
    stats: PairStats,
    household: int,
    now: float,
    next_purchase: PurchaseScorer,
    next_basket: BasketScorer,
    limit: int = 10,
) -> tuple[ShoppingListItem, ...]:
    """End to end for one household (e.g. at the kiosk): candidates, features, both models, the list.

    ``next_purchase`` and ``next_basket`` are `models.inference.NextPurchaseModel` and
    `NextBasketModel` (or anything with the same `score`)."""
    cands = candidates(stats, [household])
    x = basket_features(stats, cands, now)
    pair_x = x[:, : len(F)]
    probability = next_basket.score(x).probability
    purchase = next_purchase.score(np.ascontiguousarray(pair_x))
    return build_shopping_list(stats.categories, cands.category, pair_x, probability, purchase, now, limit)
