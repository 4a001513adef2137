"""Shelf depletion: minutes until a shelf is empty, from its recent picks, its stock and the time of day.

Input is a *pick stream*: per shelf, when items were taken and how many (the daemon's shelf pick
events; in training, the simulated households' basket lines, one shelf per category). For a shelf at
time ``now`` with ``stock`` items, `shelf_features` builds `SHELF_FEATURES`:

| feature                   | definition                                                                  |
|---------------------------|-----------------------------------------------------------------------------|
| `stock`                   | items on the shelf now                                                      |
| `picks_15m` ... `picks_24h` | items picked in the last 15 / 60 / 180 minutes and 24 hours               |
| `minutes_since_last_pick` | minutes since the last pick (capped at the 24 h horizon)                    |
| `linear_minutes`          | stock / (picks in the last hour / 60): the baseline's answer (capped)       |
| `yesterday_minutes`       | minutes to sell ``stock`` items if the next hours go as they did 24 h ago    |
| `last_week_minutes`       | the same, as they went 7 days ago                                           |
| `hour_of_day`, `hour_sin`, `hour_cos` | store-local time of day                                         |
| `weekday`                 | Monday = 0                                                                  |
| `holiday_today`, `holiday_eve`, `days_to_holiday` | the store's country's public holidays (`models.holiday_calendar`) |

The model (a gradient-boosted regressor on log1p of the minutes, capped at `HORIZON_MINUTES`) is
trained on simulator ground truth: at sampled times and stock levels, the true minutes until the
shelf's future picks exhaust the stock. The baselines are linear extrapolation of the last hour and
seasonal-naive (`last_week_minutes`, `yesterday_minutes`). A model whose card lists fewer of these
columns (e.g. `LEGACY_SHELF_FEATURES`, before the holiday features) is served with its own columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.history import PurchaseHistory
from models.holiday_calendar import HOLIDAY_FEATURES, holiday_columns

HORIZON_MINUTES = 24 * 60
MS_PER_MINUTE = 60_000
LEGACY_SHELF_FEATURES: tuple[str, ...] = (
    "stock",
    "picks_15m",
    "picks_60m",
    "picks_180m",
    "picks_24h",
    "minutes_since_last_pick",
    "linear_minutes",
    "yesterday_minutes",
    "last_week_minutes",
    "hour_of_day",
    "hour_sin",
    "hour_cos",
    "weekday",
)
SHELF_FEATURES: tuple[str, ...] = (*LEGACY_SHELF_FEATURES, *HOLIDAY_FEATURES)
S = {name: i for i, name in enumerate(SHELF_FEATURES)}
# The feature sets a shelf model may have been trained with (its card lists one of them in order); the
# daemon builds `SHELF_FEATURES` and hands each model its own columns.
SHELF_FEATURE_SET = "holidays"  # the name of `SHELF_FEATURES`, written on the cards of new models
SHELF_FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "base": LEGACY_SHELF_FEATURES,
    SHELF_FEATURE_SET: SHELF_FEATURES,
}

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class PickStream:
    """Picks sorted by (shelf, minute): shelf code, minute since 1970-01-01 (store-local), items; and the
    store's country (ISO 3166, "" = no holiday calendar) for the holiday features."""

    shelves: tuple[str, ...]
    shelf: I64
    minute: I64
    count: F64
    country: str = ""

    @classmethod
    def build(
        cls,
        shelves: tuple[str, ...],
        shelf: npt.ArrayLike,
        minute: npt.ArrayLike,
        count: npt.ArrayLike,
        *,
        country: str = "",
    ) -> PickStream:
        s = np.asarray(shelf, dtype=np.int64)
        m = np.asarray(minute, dtype=np.int64)
        c = np.asarray(count, dtype=np.float64)
        order = np.lexsort((m, s))
        return cls(shelves, s[order], m[order], c[order], country)

    @classmethod
    def from_ms(
        cls,
        shelves: tuple[str, ...],
        shelf: npt.ArrayLike,
        ts_ms: npt.ArrayLike,
        count: npt.ArrayLike,
        *,
        country: str = "",
    ) -> PickStream:
        """From the daemon's pick events (epoch ms, already in store-local time)."""
        minute = np.asarray(ts_ms, dtype=np.int64) // MS_PER_MINUTE
        return cls.build(shelves, shelf, minute, count, country=country)

    def before(self, minute: int) -> PickStream:
        """The picks strictly before ``minute`` (what was observable then)."""
        keep = self.minute < minute
        return PickStream(self.shelves, self.shelf[keep], self.minute[keep], self.count[keep], self.country)


def pick_stream_from_history(history: PurchaseHistory, *, country: str = "") -> PickStream:
    """Every basket line as a pick from its category's shelf (one shelf per category); ``country``: where
    the store is (the simulated source: `models.holiday_calendar.DEFAULT_COUNTRY`)."""
    minute = history.day.astype(np.int64) * 1440 + history.minute
    return PickStream.build(history.categories, history.category, minute, history.qty, country=country)


def _at(values: I64, index: I64) -> F64:
    """``values[index]`` where the index is valid, 0 elsewhere (also for an empty array: a shelf with no
    picks at all); callers mask the invalid positions."""
    if values.size == 0:
        return np.zeros(index.shape)
    return values[np.clip(index, 0, values.size - 1)].astype(np.float64)


class _Cumulative:
    """Cumulative picked items per shelf, for O(log n) window sums and time-to-sell lookups."""

    def __init__(self, stream: PickStream) -> None:
        self.stream = stream
        self.total = np.concatenate(([0.0], np.cumsum(stream.count)))
        self.n_shelves = len(stream.shelves)
        self.start = np.searchsorted(stream.shelf, np.arange(self.n_shelves), side="left")
        self.end = np.searchsorted(stream.shelf, np.arange(self.n_shelves), side="right")
        self.key = stream.shelf * (1 << 40) + stream.minute

    def before(self, shelf: I64, minute: F64) -> F64:
        """Items picked from ``shelf`` strictly before ``minute`` (since the stream began)."""
        idx = np.searchsorted(self.key, shelf * (1 << 40) + np.ceil(minute).astype(np.int64), side="left")
        return np.asarray(self.total[idx] - self.total[self.start[shelf]], dtype=np.float64)

    def minutes_to_sell(self, shelf: I64, minute: F64, items: F64) -> F64:
        """Minutes from ``minute`` until ``items`` more have been picked from ``shelf`` (inf if never)."""
        idx = np.searchsorted(self.key, shelf * (1 << 40) + np.ceil(minute).astype(np.int64), side="left")
        target = self.total[idx] + items
        # First event whose cumulative total reaches the target: total[j + 1] >= target.
        j = np.searchsorted(self.total, target - 1e-9, side="left") - 1
        ok = (j >= idx) & (j < self.end[shelf]) & (items > 0)
        when = np.where(ok, _at(self.stream.minute, j), np.inf)
        return np.where(items <= 0, 0.0, when - minute)


def shelf_features(
    stream: PickStream, shelf: npt.ArrayLike, now_minute: npt.ArrayLike, stock: npt.ArrayLike
) -> F32:
    """`SHELF_FEATURES` for each (shelf code, minute since epoch, items on the shelf)."""
    s = np.asarray(shelf, dtype=np.int64)
    t = np.broadcast_to(np.asarray(now_minute, dtype=np.float64), s.shape)
    k = np.broadcast_to(np.asarray(stock, dtype=np.float64), s.shape)
    cum = _Cumulative(stream)
    now = cum.before(s, t)
    window = {w: now - cum.before(s, t - w) for w in (15, 60, 180, 1440)}
    idx = np.searchsorted(cum.key, s * (1 << 40) + np.ceil(t).astype(np.int64), side="left") - 1
    has_last = (idx >= cum.start[s]) & (idx >= 0)
    last = np.where(has_last, _at(stream.minute, idx), -np.inf)
    cap = float(HORIZON_MINUTES)
    with np.errstate(divide="ignore", invalid="ignore"):
        linear = np.where(window[60] > 0, k / (window[60] / 60.0), np.inf)
    hour = (t % 1440) / 60.0
    day = np.floor(t / 1440).astype(np.int64)
    columns = {
        "stock": k,
        "picks_15m": window[15],
        "picks_60m": window[60],
        "picks_180m": window[180],
        "picks_24h": window[1440],
        "minutes_since_last_pick": np.minimum(t - last, cap),
        "linear_minutes": np.minimum(linear, cap),
        "yesterday_minutes": np.minimum(cum.minutes_to_sell(s, t - 1440, k), cap),
        "last_week_minutes": np.minimum(cum.minutes_to_sell(s, t - 7 * 1440, k), cap),
        "hour_of_day": hour,
        "hour_sin": np.sin(2 * np.pi * hour / 24),
        "hour_cos": np.cos(2 * np.pi * hour / 24),
        "weekday": (day + 3) % 7,
        **holiday_columns(day, stream.country),
    }
    matrix = np.empty((s.size, len(SHELF_FEATURES)), dtype=np.float32)
    for name, i in S.items():
        matrix[:, i] = columns[name]
    return matrix


def true_minutes_to_empty(
    stream: PickStream, shelf: npt.ArrayLike, now_minute: npt.ArrayLike, stock: npt.ArrayLike
) -> F64:
    """Ground truth: minutes until the shelf's actual future picks exhaust ``stock`` (inf if never)."""
    s = np.asarray(shelf, dtype=np.int64)
    t = np.broadcast_to(np.asarray(now_minute, dtype=np.float64), s.shape)
    k = np.broadcast_to(np.asarray(stock, dtype=np.float64), s.shape)
    return _Cumulative(stream).minutes_to_sell(s, t, k)


def linear_baseline_minutes(features: F32) -> F64:
    """Linear extrapolation of the last hour's pick rate (capped at the horizon)."""
    return features[:, S["linear_minutes"]].astype(np.float64)


@dataclass(frozen=True, slots=True, eq=False)
class ShelfDepletionScores:
    """Minutes until empty per shelf (capped at `HORIZON_MINUTES`; at the cap: not within the horizon)."""

    minutes: F64

    @property
    def beyond_horizon(self) -> npt.NDArray[np.bool_]:
        return self.minutes >= HORIZON_MINUTES


def depletion_from_log_minutes(log_minutes: F64, features: F32) -> ShelfDepletionScores:
    """The model's log1p(minutes) as minutes; an empty shelf is empty now."""
    minutes = np.clip(np.expm1(log_minutes), 0.0, float(HORIZON_MINUTES))
    return ShelfDepletionScores(np.where(features[:, S["stock"]] <= 0, 0.0, minutes))


def sample_shelf_times(
    stream: PickStream, start_minute: int, end_minute: int, *, samples: int, max_stock: int, seed: int
) -> tuple[I64, F64, F64]:
    """Random (shelf, minute, stock) triples in [start, end), stock 1..max_stock (log-uniform)."""
    rng = np.random.default_rng(seed)
    shelf = rng.integers(0, len(stream.shelves), samples)
    minute = rng.integers(start_minute, end_minute, samples).astype(np.float64)
    stock = np.floor(np.exp(rng.uniform(0, np.log(max_stock + 1), samples))).astype(np.float64)
    return shelf.astype(np.int64), minute, np.maximum(stock, 1.0)


def shelf_errors(predicted: F64, actual: F64) -> dict[str, float]:
    """Errors on samples whose shelf empties within the horizon: MAE and median error in minutes, share
    within +-30 minutes and within +-20%."""
    ok = np.isfinite(actual) & (actual < HORIZON_MINUTES)
    err = np.abs(predicted[ok] - actual[ok])
    if err.size == 0:
        return {
            "mae_minutes": float("nan"),
            "median_error_minutes": float("nan"),
            "within_30min": float("nan"),
            "within_20pct": float("nan"),
            "samples": 0,
        }
    return {
        "mae_minutes": float(err.mean()),
        "median_error_minutes": float(np.median(err)),
        "within_30min": float(np.mean(err <= 30)),
        "within_20pct": float(np.mean(err <= 0.2 * np.maximum(actual[ok], 1.0))),
        "samples": int(ok.sum()),
    }
