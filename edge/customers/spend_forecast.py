"""The served 90-day spend of the scored households (docs/customer_models.md, "What the edge serves").

A bundle with a direct spend forecast (``CustomerModelParams.spend_forecast``, chosen and fitted at
training time by `models.customers.spend_forecast`) serves it as the expected spend in the next 90 days:
its linear form over the household's history features (`models.customers.forecast.history_features`,
the same code training uses, over the purchases the edge read) and the trip and spend models' scores
the edge has just computed (expected trips, spend per trip, their product, P(alive)). A bundle without
one, or with one for another horizon, serves expected trips x spend per trip, as before. CLV over any
horizon stays the buy-till-you-die calculation.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from models.customers.forecast import SpendForecast, history_features
from models.customers.scoring import HouseholdScores

F64 = npt.NDArray[np.float64]
BTYD = "expected trips x spend per trip"


def forecast_description(forecast: SpendForecast | None, horizon_days: float) -> str:
    """What produces the served spend over ``horizon_days``, in words (the insights' reasoning)."""
    if forecast is None or forecast.horizon_days != horizon_days:
        return BTYD
    return (
        f"the direct spend forecast {forecast.name!r} (the household's own recent spend and trips "
        "weighed with the trip and spend models' figures, fitted on the chain's histories)"
    )


def served_spend(
    forecast: SpendForecast | None,
    scores: HouseholdScores,
    households: npt.NDArray[np.str_],
    purchases: tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike],
    end_day: int,
) -> F64:
    """The expected spend in ``scores.horizon_days`` of ``households`` (the order of ``scores``), from
    their purchases (household, day, spend) before ``end_day``: the forecast when it is for that
    horizon, else ``scores.expected_spend``."""
    horizon = scores.horizon_days
    if forecast is None or forecast.horizon_days != horizon or households.size == 0:
        return scores.expected_spend
    from models.customers.rfm import Purchases, aligned, rfm_summary  # noqa: PLC0415 - as scores.py: lazily

    customer, day, spend = (np.asarray(a) for a in purchases)
    p = Purchases("edge", customer.astype(str), day.astype(np.int64), spend.astype(np.float64))
    full = rfm_summary(p.customer, p.day, p.spend, calibration_end_day=end_day, recent_days=horizon)
    own = history_features(p, end_day, full, horizon, long="s180h" in forecast.coef)
    features = {name: aligned(full, values, households, np.nan) for name, values in own.items()}
    features |= {
        "btyd": scores.expected_spend,
        "trips": scores.expected_trips,
        "per_trip": scores.spend_per_trip,
        "p_alive": scores.p_alive,
    }
    return forecast.predict(features)
