"""The direct 90-day spend forecast as a customer bundle ships it and the edge evaluates it: a linear form
``max(0, sum_i coef_i x feature_i)`` over named features of the household (`FEATURES`; ``"1"`` is the
intercept), chosen and fitted at training time by `models.customers.spend_forecast`.

The household's own history features (`history_features`: own spend in the last 30, 90 and 180 days,
trips in the last 90, days since the last trip) are computed here once, for training and the edge alike;
the model features (``btyd``, ``trips``, ``per_trip``, ``p_alive``) are the trip and spend models'
scores. `SpendForecast` is the bundle's field (``CustomerModelParams.spend_forecast``), checked when it
is decoded: a coefficient on a feature this code does not compute is refused, naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec
import numpy as np
import numpy.typing as npt

from models.customers.rfm import Purchases, RfmSummary, aligned

F64 = npt.NDArray[np.float64]
Features = Mapping[str, F64]
INTERCEPT = "1"
LONG_DAYS = 180  # the s180h window; training uses it only when the data before its pseudo-cutoff spans it
FEATURES = (
    "own90",  # the baseline: own spend in the last 90 days (first trip excluded, scaled when younger)
    "s30x3",  # spend in the last 30 days x 3
    "s180h",  # spend in the last 180 days / 2
    "btyd",  # expected trips x spend per trip
    "trips",  # expected trips in the horizon
    "per_trip",  # expected spend per trip
    "p_alive",
    "recency_days",  # days from the last trip to the cutoff
    "trips90",  # trips in the last 90 days
)
MODEL_FEATURES = ("btyd", "trips", "per_trip", "p_alive")  # from the trip and spend models' scores


def linear_forecast(coef: Mapping[str, float], features: Features) -> F64:
    """``max(0, sum_i coef_i x feature_i)`` for every household of ``features`` (arrays of equal length)."""
    size = next(iter(features.values())).size
    total = np.zeros(size)
    for name, c in coef.items():
        total += c * (np.ones(size) if name == INTERCEPT else features[name])
    return np.asarray(np.maximum(total, 0.0), dtype=np.float64)


class SpendForecast(msgspec.Struct, frozen=True, kw_only=True):
    """The shipped forecast of the spend in the next ``horizon_days``: the candidate's name (e.g.
    ``l1_full``) and its coefficients by feature name."""

    name: str
    coef: dict[str, float]
    horizon_days: float = 90.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.coef) - {INTERCEPT, *FEATURES})
        if unknown:
            known = ", ".join((INTERCEPT, *FEATURES))
            raise ValueError(f"spend_forecast.coef: unknown features {unknown} (known: {known})")
        if not self.coef:
            raise ValueError("spend_forecast.coef: no coefficient")
        if not all(math.isfinite(c) for c in self.coef.values()):
            raise ValueError("spend_forecast.coef: a coefficient is not finite")

    def predict(self, features: Features) -> F64:
        """The forecast of every household of ``features``."""
        return linear_forecast(self.coef, features)


def own_recent_spend(s: RfmSummary, horizon_days: float) -> F64:
    """The baseline: the household's own spend in the ``recent_days`` before the cutoff (the first trip
    excluded, as the models' x), scaled to ``horizon_days`` when the household is younger than it."""
    age = s.T * s.unit_days
    first_inside = age < horizon_days
    scale = horizon_days / np.maximum(np.minimum(age, horizon_days), 7.0)
    return np.asarray((s.spend_recent - first_inside * s.first_spend) * scale, dtype=np.float64)


def window_spend(p: Purchases, end: int, days: int, full: RfmSummary) -> F64:
    """Each of ``full``'s customers' spend in the ``days`` before day ``end`` (0 without a trip there)."""
    own = p.since(end - days).summary(end)
    total = own.zbar * own.x + own.first_spend
    return aligned(own, total, full.customers, 0.0)


def history_features(
    p: Purchases, end: int, full: RfmSummary, horizon_days: float, long: bool
) -> dict[str, F64]:
    """The features from the purchases alone, for ``full``'s customers (``p`` summarised before ``end``
    with ``recent_days`` = ``horizon_days``): own90, s30x3, recency_days, trips90 and, when ``long``,
    s180h."""
    out = {
        "own90": own_recent_spend(full, horizon_days),
        "s30x3": 3.0 * window_spend(p, end, 30, full),
        "recency_days": full.last_gap_days,
        "trips90": full.trips_recent,
    }
    if long:
        out["s180h"] = window_spend(p, end, LONG_DAYS, full) / 2.0
    return out
