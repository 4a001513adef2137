"""Behavioural segments of households: features, the shipped model, fitting and assignment (issue #15).

`segment_features` turns basket lines into one row per household (`SEGMENT_FEATURES`, in plain units);
`fit_segments` clusters those rows at training time (k-means with several inits on scaled features, k
chosen for stability) into a `SegmentModel`; `assign` puts households into its segments. All of it is
numpy only (the edge scores with `assign`; fitting needs no scikit-learn either).

Scaling: features marked ``log`` are log1p-transformed, then every feature is standardised with the
training population's mean and deviation and clipped to +-3 (one extreme household cannot pull a centre);
a feature that is constant in training (a source without it, such as CDNOW without categories) gets
weight 0 and plays no part. The segments' ids, names and descriptions come from `segment_naming`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from models.customers.segments_kmeans import kmeans, nearest, split_stability
from models.datasets import SIMULATED, load_source
from models.errors import DatasetError
from models.history import PurchaseHistory

F64 = npt.NDArray[np.float64]
SECONDS_PER_DAY = 86_400.0
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
EVENING_HOUR = 17  # a trip that starts at or after 17:00 is an evening trip
MORNING_HOUR = 12  # ... before 12:00 a morning trip
TREND_DAYS = 91.0  # trend: spend rate in the last 13 weeks against the rate before them
MIN_TENURE_WEEKS = 4.0  # rates of newer households are over at least four weeks
CLIP_Z = 3.0
SEGMENTS_FORMAT = "storeedge-segments"
SEGMENTS_VERSION = 1
STABILITY_GOAL = 0.8
# k is chosen with this margin over the goal: split-half ARIs of one k vary by about this much between
# seeds, so a k that only just reaches 0.8 on the choosing halvings often misses it on fresh ones.
STABILITY_MARGIN = 0.05
K_RANGE = (2, 8)

# name -> log1p before scaling; the order is the column order of `segment_features`.
SEGMENT_FEATURES: dict[str, bool] = {
    "recency_days": True,  # days from the last trip to `end`
    "trips_per_week": True,  # frequency: trips (shopping days) per week of tenure
    "spend_per_week": True,  # monetary value: spend per week of tenure
    "basket_lines": True,  # basket size: lines per trip
    "category_breadth": True,  # distinct categories ever bought
    "promo_share": False,  # share of lines on promotion
    "day_part": False,  # share of trips from 17:00 minus share before 12:00 (-1 mornings .. +1 evenings)
    "weekend_share": False,  # share of trips on Saturday or Sunday
    "trend": False,  # log ratio of the spend rate in the last 13 weeks to the rate before them
}
FEATURE_NAMES = tuple(SEGMENT_FEATURES)


@dataclass(frozen=True, slots=True, eq=False)
class BasketLines:
    """Basket lines of many households, in equal-length arrays.

    ``ts`` is store-local wall-clock time as epoch seconds (as the purchase history's day and minute),
    so that hour and weekday are the shopper's. ``lacks`` names what the source does not record
    (``category``, ``promoted``, ``time_of_day``); those columns then hold placeholders ("" / False /
    midnight) and the features built from them are constant.
    """

    household: npt.NDArray[Any]  # ids: strings, or integer codes (sort several times faster)
    ts: F64
    category: npt.NDArray[Any]  # names or integer codes
    spend: F64
    promoted: npt.NDArray[np.bool_]
    lacks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        sizes = {len(a) for a in (self.household, self.ts, self.category, self.spend, self.promoted)}
        if len(sizes) > 1:
            raise DatasetError(f"basket lines: columns differ in length ({sorted(sizes)})")

    @property
    def size(self) -> int:
        return int(self.ts.size)

    def before(self, end: float) -> BasketLines:
        """The lines strictly before ``end`` (epoch seconds)."""
        keep = self.ts < end
        return BasketLines(
            self.household[keep],
            self.ts[keep],
            self.category[keep],
            self.spend[keep],
            self.promoted[keep],
            self.lacks,
        )


def basket_lines_from_history(history: PurchaseHistory) -> BasketLines:
    """A purchase history's lines (Complete Journey, the simulator, history files): all columns known."""
    names = np.asarray(history.households, dtype=str)
    return BasketLines(
        household=names[history.household],
        ts=history.day.astype(np.float64) * SECONDS_PER_DAY + history.minute.astype(np.float64) * 60.0,
        category=np.asarray(history.categories, dtype=str)[history.category],
        spend=history.qty.astype(np.float64) * history.price.astype(np.float64),
        promoted=history.promo.astype(bool),
    )


def load_basket_lines(source: str, history: PurchaseHistory | None = None) -> BasketLines:
    """`completejourney`, `cdnow`, a history file, or `simulated` (then ``history`` is the simulation's).

    CDNOW records customer, day and dollars only: no category, promotion or time of day, so its lines
    say so in ``lacks`` and the features from them are left out of the fit.
    """
    from models.customers.cdnow import CDNOW, load_cdnow_transactions  # noqa: PLC0415

    if source == CDNOW:
        customer, day, spend = load_cdnow_transactions()
        n = customer.size
        return BasketLines(
            household=np.asarray(customer, dtype=str),
            ts=np.asarray(day, dtype=np.float64) * SECONDS_PER_DAY,
            category=np.full(n, "", dtype=str),
            spend=np.asarray(spend, dtype=np.float64),
            promoted=np.zeros(n, dtype=bool),
            lacks=("category", "promoted", "time_of_day"),
        )
    if history is None:
        if source == SIMULATED:
            raise DatasetError("source 'simulated': pass the simulated history (the CLI builds it)")
        history = load_source(source)
    return basket_lines_from_history(history)


def missing_features(lacks: Sequence[str]) -> list[str]:
    """The features a source cannot inform, given what its lines lack."""
    by_column = {
        "category": ["category_breadth"],
        "promoted": ["promo_share"],
        "time_of_day": ["day_part"],
    }
    return [f for column in lacks for f in by_column.get(column, [])]


def segment_features(lines: BasketLines, end: float) -> tuple[npt.NDArray[np.str_], F64]:
    """(household ids sorted, features (n, len(FEATURE_NAMES))) from the lines before ``end``.

    A trip is a household's shopping day (as in the RFM summary); its time of day is its first line's.
    Households without a line before ``end`` are left out.
    """
    lines = lines.before(end)
    if lines.size == 0:
        raise DatasetError("segment features: no basket lines before the end")
    names, hh = np.unique(lines.household, return_inverse=True)
    n = names.size
    day = np.floor(lines.ts / SECONDS_PER_DAY).astype(np.int64)
    order = np.lexsort((lines.ts, day, hh))
    hh_s, day_s, ts_s = hh[order], day[order], lines.ts[order]
    starts = np.ones(hh_s.size, dtype=bool)
    starts[1:] = (hh_s[1:] != hh_s[:-1]) | (day_s[1:] != day_s[:-1])
    trip_hh, trip_day, trip_ts = hh_s[starts], day_s[starts], ts_s[starts]  # first line of each trip
    trips = np.bincount(trip_hh, minlength=n).astype(np.float64)
    first_ts = np.full(n, np.inf)
    np.minimum.at(first_ts, hh, lines.ts)
    last_ts = np.full(n, -np.inf)
    np.maximum.at(last_ts, hh, lines.ts)
    tenure_weeks = np.maximum((end - first_ts) / SECONDS_PER_WEEK, MIN_TENURE_WEEKS)
    spend = np.bincount(hh, weights=lines.spend, minlength=n)
    line_count = np.bincount(hh, minlength=n).astype(np.float64)
    hour = (trip_ts - trip_day * SECONDS_PER_DAY) / 3600.0
    weekday = (trip_day + 3) % 7  # Monday = 0; 1970-01-01 was a Thursday
    category = np.unique(lines.category, return_inverse=True)[1].astype(np.int64)
    width = int(category.max()) + 1 if category.size else 1
    pair_household = np.unique(hh.astype(np.int64) * width + category) // width  # (household, category) once
    recent_start = end - TREND_DAYS * SECONDS_PER_DAY
    recent = lines.ts >= recent_start
    spend_recent = np.bincount(hh[recent], weights=lines.spend[recent], minlength=n)
    before_weeks = (recent_start - first_ts) / SECONDS_PER_WEEK
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_before = np.where(before_weeks > 0, (spend - spend_recent) / before_weeks, np.nan)
        trend = np.where(
            before_weeks >= TREND_DAYS / 7.0,
            np.log1p(spend_recent / (TREND_DAYS / 7.0)) - np.log1p(rate_before),
            0.0,
        )
    columns = {
        "recency_days": (end - last_ts) / SECONDS_PER_DAY,
        "trips_per_week": trips / tenure_weeks,
        "spend_per_week": spend / tenure_weeks,
        "basket_lines": line_count / trips,
        "category_breadth": np.bincount(pair_household, minlength=n).astype(np.float64),
        "promo_share": np.bincount(hh, weights=lines.promoted.astype(np.float64), minlength=n) / line_count,
        "day_part": np.bincount(
            trip_hh, weights=(hour >= EVENING_HOUR) * 1.0 - (hour < MORNING_HOUR), minlength=n
        )
        / trips,
        "weekend_share": np.bincount(trip_hh, weights=(weekday >= 5) * 1.0, minlength=n) / trips,
        "trend": trend,
    }
    for name in missing_features(lines.lacks):
        columns[name] = np.zeros(n)
    return names.astype(str), np.stack([columns[f] for f in FEATURE_NAMES], axis=1).astype(np.float64)


class Segment(msgspec.Struct, frozen=True, kw_only=True):
    """One segment: a stable id, a short name and a description in words of its centre."""

    id: str
    name: str
    description: str
    households: int  # members when fitted
    typical: dict[str, float]  # the members' median of each feature, in its own units


class SegmentCard(msgspec.Struct, frozen=True, kw_only=True):
    fitted_on: str  # the training source
    trained: str  # ISO date
    households: int
    k: int
    k_rule: str  # how k was chosen
    stability: float | None  # median split-half adjusted Rand index at this k (None: not measured)
    stability_by_k: dict[str, float] = {}
    missing_features: list[str] = []  # features the source cannot inform (it does not record them)
    unused_features: list[str] = []  # weight 0: the missing ones and any constant in training
    end: str = ""  # features are from lines before this time (ISO)


class SegmentModel(msgspec.Struct, frozen=True, kw_only=True):
    """What is shipped: the scaling, the centres (in scaled units) and the segments, in order."""

    format: str = SEGMENTS_FORMAT
    version: int = SEGMENTS_VERSION
    features: list[str]
    log_scaled: list[bool]
    mean: list[float]
    scale: list[float]
    weight: list[float]  # 0 for a feature constant in training
    centres: list[list[float]]
    segments: list[Segment]
    card: SegmentCard


def segment_model_to_json(model: SegmentModel) -> bytes:
    return msgspec.json.encode(model)


def segment_model_from_json(raw: bytes) -> SegmentModel:
    try:
        model = msgspec.json.decode(raw, type=SegmentModel)
    except msgspec.ValidationError as exc:
        raise DatasetError(f"segment model: {exc}") from exc
    if model.format != SEGMENTS_FORMAT or model.version != SEGMENTS_VERSION:
        raise DatasetError(
            f"segment model: format {model.format!r} v{model.version} is not {SEGMENTS_FORMAT} v1"
        )
    return model


def scaled(model: SegmentModel, features: F64) -> F64:
    """The features in the model's units: log1p where marked, standardised, clipped, weighted."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(model.features):
        raise DatasetError(f"segment features: expected (n, {len(model.features)}), got {x.shape}")
    logs = np.asarray(model.log_scaled)
    x = np.where(logs, np.log1p(np.maximum(x, 0.0)), x)
    z = np.clip((x - np.asarray(model.mean)) / np.asarray(model.scale), -CLIP_Z, CLIP_Z)
    return np.asarray(np.nan_to_num(z) * np.asarray(model.weight), dtype=np.float64)


def assign(model: SegmentModel, features: F64) -> npt.NDArray[np.int64]:
    """Index into ``model.segments`` of each row of ``features`` (the nearest centre; numpy only)."""
    return nearest(scaled(model, features), np.asarray(model.centres, dtype=np.float64))


def fit_segments(
    ids: npt.ArrayLike,
    features: F64,
    *,
    k: int | None = None,
    seed: int = 0,
    previous: SegmentModel | None = None,
    fitted_on: str = "",
    missing: Sequence[str] = (),
    end: float | None = None,
    measure_stability: bool = True,
) -> SegmentModel:
    """Cluster households (rows of ``features``, columns `FEATURE_NAMES`) into segments.

    k: given, or the largest k in 2..8 whose split-half adjusted Rand index (median of five random
    halvings) reaches 0.85 (the goal 0.8 plus a margin); when none does, the most stable k.
    Ids: matched to ``previous``'s segments by centre (Hungarian algorithm) when given, else from the
    segment's rank by spend per week.
    """
    from models.customers.segment_naming import name_segments  # noqa: PLC0415

    x = np.asarray(features, dtype=np.float64)
    names = np.asarray(ids).astype(str)
    if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES) or x.shape[0] != names.size:
        raise DatasetError(
            f"fit segments: features must be (n, {len(FEATURE_NAMES)}) for n ids, got {x.shape}"
        )
    if names.size < 30:
        raise DatasetError(f"fit segments: {names.size} households are too few to segment (need 30)")
    base = _scaling(x, missing)
    z = scaled(base, x)
    if k is None:
        by_k = {kk: split_stability(z, kk, seed) for kk in range(K_RANGE[0], K_RANGE[1] + 1)}
        stable = [kk for kk, ari in by_k.items() if ari >= STABILITY_GOAL + STABILITY_MARGIN]
        k = max(stable) if stable else max(by_k, key=lambda kk: by_k[kk])
        rule = (
            f"largest k in {K_RANGE[0]}..{K_RANGE[1]} with split-half ARI >= "
            f"{STABILITY_GOAL + STABILITY_MARGIN:.2f} (else the most stable k)"
        )
    else:
        if not 1 <= k <= names.size // 10:
            raise DatasetError(f"fit segments: k={k} needs 1 <= k <= households / 10")
        by_k = {k: split_stability(z, k, seed)} if measure_stability else {}
        rule = "given"
    centres, labels = kmeans(z, k, seed)
    model = msgspec.structs.replace(
        base,
        centres=centres.tolist(),
        card=SegmentCard(
            fitted_on=fitted_on,
            trained=datetime.now(UTC).date().isoformat(),
            households=int(names.size),
            k=k,
            k_rule=rule,
            stability=round(by_k[k], 4) if k in by_k else None,
            stability_by_k={str(kk): round(v, 4) for kk, v in by_k.items()},
            missing_features=[f for f in FEATURE_NAMES if f in missing],
            unused_features=list(base.card.unused_features),
            end=datetime.fromtimestamp(end, UTC).isoformat() if end is not None else "",
        ),
    )
    return name_segments(model, x, labels, previous)


def _scaling(x: F64, missing: Sequence[str]) -> SegmentModel:
    logs = np.asarray([SEGMENT_FEATURES[f] for f in FEATURE_NAMES])
    t = np.where(logs, np.log1p(np.maximum(x, 0.0)), x)
    mean, std = t.mean(0), t.std(0)
    constant = (std < 1e-9) | np.isin(np.asarray(FEATURE_NAMES), list(missing))
    return SegmentModel(
        features=list(FEATURE_NAMES),
        log_scaled=logs.tolist(),
        mean=mean.tolist(),
        scale=np.where(constant, 1.0, std).tolist(),
        weight=np.where(constant, 0.0, 1.0).tolist(),
        centres=[],
        segments=[],
        card=SegmentCard(
            fitted_on="",
            trained="",
            households=x.shape[0],
            k=0,
            k_rule="",
            stability=None,
            unused_features=[f for f, c in zip(FEATURE_NAMES, constant, strict=True) if c],
        ),
    )
