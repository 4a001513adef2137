"""Scoring households and shelves with the ONNX models: numpy in, rows for the cache out.

Pure functions (no database, no event loop) that run in an executor thread. The daemon's side of
`models`: it turns the store's purchase lines into a `PurchaseHistory`, scores every household's
next-basket candidates, next purchase for its own categories, and builds its ranked list with reasons.

Days are store-local calendar days. A household's forecast counts from its *origin day*: today when it
has not shopped yet today (the history ends yesterday, exactly as in training), tomorrow when it has
(so a purchase made today counts, and the models still see a history that ends the day before the
origin). Category-level features (how many households buy a category) come from the whole store's
sales, so scoring a few households at a time gives the same numbers as scoring all at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.predictions.tables import MS_PER_DAY, CategoryAggregates, HouseholdLines, PredictionRow, ShelfPicks
from models.features import F, PairStats, summarise
from models.history import PurchaseHistory, make_history
from models.inference import StoreModels
from models.next_basket import Candidates, basket_features, candidates
from models.next_purchase import MIN_PURCHASES
from models.ranker_serving import NeighbourState, ranker_features
from models.shelf import HORIZON_MINUTES, PickStream, S, shelf_features
from models.shopping_list import list_ranks, reasons, shown_days, urgencies

MS_PER_MINUTE = 60_000
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ScoringContext:
    now_ms: int
    utc_offset_min: int
    list_limit: int
    categories: tuple[str, ...]  # sorted: the history's category table
    store: CategoryAggregates
    # The store-wide part of the next-basket ranker's features (`edge.predictions.ranker`); None: not
    # computed (yet), the pointwise model orders the candidates.
    ranker: NeighbourState | None = None


@dataclass(frozen=True, slots=True)
class ScoredHouseholds:
    households: tuple[str, ...]  # every household scored (also those left with no rows)
    rows: list[PredictionRow]


def local_day(ts_ms: int, utc_offset_min: int) -> int:
    return (ts_ms + utc_offset_min * MS_PER_MINUTE) // MS_PER_DAY


def lines_history(lines: HouseholdLines, categories: tuple[str, ...], utc_offset_min: int) -> PurchaseHistory:
    """The households' basket lines as a `PurchaseHistory` on store-local days and minutes."""
    local_ms = lines.ts_ms + utc_offset_min * MS_PER_MINUTE
    return make_history(
        lines.households,
        categories,
        {
            "household": lines.household,
            "category": lines.category,
            "day": local_ms // MS_PER_DAY,
            "minute": (local_ms % MS_PER_DAY) // MS_PER_MINUTE,
            "basket": lines.basket,
            "qty": lines.qty,
            "price": lines.price,
            "promo": np.zeros(lines.household.shape[0], dtype=bool),  # the till sends no promotion flag
        },
        origin="purchase lines",
    )


def score_households(
    models: StoreModels,
    lines: HouseholdLines,
    ctx: ScoringContext,
    served_by: tuple[str | None, str | None] = (None, None),
    history: PurchaseHistory | None = None,
) -> ScoredHouseholds:
    """Score every household in ``lines``: one row per own category (among its next-basket candidates).
    ``served_by``: the (experiment, arm) the rows are tagged with (none: the store's own models);
    ``history``: `lines_history` of ``lines``, when already built (`edge.predictions.store_read`)."""
    if not lines.households:
        return ScoredHouseholds((), [])
    if history is None:
        history = lines_history(lines, ctx.categories, ctx.utc_offset_min)
    today = local_day(ctx.now_ms, ctx.utc_offset_min)
    n_hh = len(history.households)
    shopped_today = np.zeros(n_hh, dtype=bool)
    shopped_today[history.household[history.day >= today]] = True
    has_lines = np.bincount(history.household, minlength=n_hh) > 0
    rows: list[PredictionRow] = []
    for origin, group in ((today, ~shopped_today & has_lines), (today + 1, shopped_today)):
        if group.any():
            rows += _score_group(models, history.select(group[history.household]), origin, ctx, served_by)
    return ScoredHouseholds(lines.households, rows)


@dataclass(frozen=True, slots=True, eq=False)
class RankedCandidates:
    """A group's next-basket candidates for trips on the origin day: their features, P(in the basket)
    from the pointwise model and the scores that order them on the lists (`ranking_scores`)."""

    stats: PairStats
    cands: Candidates
    features: F32  # BASKET_FEATURES
    probability: F64
    order: F64


def rank_candidates(
    models: StoreModels, history: PurchaseHistory, origin: int, ctx: ScoringContext
) -> RankedCandidates:
    """Every household of ``history`` (one origin day): candidates, features, P and order."""
    stats = summarise(history, origin)
    cat_households = np.asarray([ctx.store.households_by_category.get(c, 0) for c in stats.categories])
    stats = dataclasses.replace(
        stats,
        cat_households=np.maximum(cat_households, stats.cat_households).astype(np.int64),
        active_households=max(ctx.store.active_households, stats.active_households),
    )
    cands = candidates(stats, np.unique(history.household).astype(np.int64))
    x = basket_features(stats, cands, float(origin))
    probability = models.next_basket.score(x).probability
    order = ranking_scores(models, ctx.ranker, history, stats, cands, x, probability)
    return RankedCandidates(stats, cands, x, probability, order)


def _score_group(
    models: StoreModels,
    history: PurchaseHistory,
    origin: int,
    ctx: ScoringContext,
    served_by: tuple[str | None, str | None],
) -> list[PredictionRow]:
    step = rank_candidates(models, history, origin, ctx)
    stats, cands, x, probability, order = step.stats, step.cands, step.features, step.probability, step.order
    pair_x = np.ascontiguousarray(x[:, : len(F)])
    n = pair_x[:, F["n_purchases"]].astype(np.float64)
    forecast = np.flatnonzero(n >= MIN_PURCHASES)
    nan = np.full(cands.rows, np.nan)
    p = {d: nan.copy() for d in (1, 2, 7, 14)}
    p_horizon, expected, confidence = nan.copy(), nan.copy(), nan.copy()
    quantiles = np.full((cands.rows, 3), np.nan)
    if forecast.size:
        scores = models.next_purchase.score(np.ascontiguousarray(pair_x[forecast]))
        for d, column in p.items():
            column[forecast] = scores.p_within_days(d)
        p_horizon[forecast] = scores.p_horizon
        expected[forecast] = scores.expected_days
        confidence[forecast] = scores.confidence
        quantiles[forecast] = scores.days_quantiles
    urgency = urgencies(n, p[2], p[7])
    gap, recency = pair_x[:, F["interval_median"]], pair_x[:, F["recency_days"]]
    with np.errstate(invalid="ignore"):
        past = (n >= MIN_PURCHASES) & np.isfinite(gap) & np.isfinite(recency) & (recency >= gap)
    rank = list_ranks(cands.query, n, order, urgency, ctx.list_limit, shown_days(expected, p[7], past))
    names = history.households
    cats = stats.categories
    purchase_model = models.next_purchase.card.version
    basket_model = models.next_basket.card.version
    own = np.flatnonzero(n > 0)
    listed = own[rank[own] > 0]
    words = dict.fromkeys(own.tolist())
    names_listed = [cats[c] for c in cands.category[listed].tolist()]
    words.update(
        zip(listed.tolist(), reasons(names_listed, pair_x[listed], float(origin), p[7][listed]), strict=True)
    )
    k = own.size
    columns: list[list[object]] = [
        [names[h] for h in cands.household[own].tolist()],
        [cats[c] for c in cands.category[own].tolist()],
        n[own].astype(np.int64).tolist(),
        *(_nullable(a[own]) for a in (p[1], p[2], p[7], p[14], p_horizon, expected)),
        *(_nullable(quantiles[own, j]) for j in range(3)),
        _nullable(confidence[own]),
        np.round(probability[own], 6).tolist(),
        urgency[own].tolist(),
        list(words.values()),
        [r if r > 0 else None for r in rank[own].tolist()],
        [purchase_model] * k,
        [basket_model] * k,
        [ctx.now_ms] * k,
        [origin] * k,
        [ctx.utc_offset_min] * k,
        [served_by[0]] * k,
        [served_by[1]] * k,
        past[own].astype(np.int64).tolist(),
    ]
    return list(zip(*columns, strict=True))


def ranking_scores(
    models: StoreModels,
    state: NeighbourState | None,
    history: PurchaseHistory,
    stats: PairStats,
    cands: Candidates,
    base: F32,
    probability: F64,
) -> F64:
    """What orders the candidates on the lists: the ranker's scores when the models have a ranker and
    ``state`` was computed with its TIFU-KNN parameters, else the pointwise ``probability``. The ranker
    scores only the household's own categories (the lists hold nothing else; the others get -inf), its
    features are computed over all candidates (their ranks among them are features)."""
    ranker = models.next_basket_ranker
    if ranker is None or state is None or state.tifu != ranker.tifu:
        return probability
    x = ranker_features(state, history, stats, cands, ranker.groups, base)
    own = np.flatnonzero(base[:, F["n_purchases"]] > 0)
    order = np.full(cands.rows, -np.inf)
    order[own] = ranker.score(np.ascontiguousarray(x[own]))
    return order


def _nullable(values: npt.NDArray[np.float64]) -> list[object]:
    """Floats rounded to 6 places, NaN as None (SQL NULL)."""
    rounded = np.round(values.astype(np.float64), 6)
    out: list[object] = rounded.astype(object).tolist()
    for i in np.flatnonzero(np.isnan(rounded)).tolist():
        out[i] = None
    return out


# -- shelves --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShelfForecast:
    shelf: str
    items: int
    minutes_to_empty: float | None  # None: not expected to empty within the 24 h horizon
    baseline_minutes: float | None
    empty_at_ms: int | None


def forecast_shelves(
    models: StoreModels, picks: ShelfPicks, now_ms: int, utc_offset_min: int, country: str = ""
) -> list[ShelfForecast]:
    """Minutes until each shelf is empty, from its picks (store-local minutes), its items now and the
    public holidays of ``country`` (ISO 3166, "" = none)."""
    if not picks.shelves:
        return []
    offset_min = utc_offset_min
    stream = PickStream.build(
        picks.shelves, picks.pick_shelf, picks.pick_minute + offset_min, picks.pick_items, country=country
    )
    codes = np.arange(len(picks.shelves), dtype=np.int64)
    now_minute = now_ms / MS_PER_MINUTE + offset_min
    x = shelf_features(stream, codes, now_minute, np.asarray(picks.items, dtype=np.float64))
    minutes = models.shelf_depletion.score(x).minutes
    baseline = x[:, S["linear_minutes"]].astype(np.float64)
    out = []
    for i, shelf in enumerate(picks.shelves):
        m = float(minutes[i])
        b = float(baseline[i])
        within = m < HORIZON_MINUTES
        out.append(
            ShelfForecast(
                shelf,
                int(picks.items[i]),
                round(m, 1) if within else None,
                round(b, 1) if b < HORIZON_MINUTES else None,
                int(now_ms + m * MS_PER_MINUTE) if within else None,
            )
        )
    return out
