"""Edge-side scoring of households with fitted customer models: closed forms only (numpy and scipy).

`CustomerModelParams` is what a model bundle ships (JSON via msgspec): the trip model, the Gamma-Gamma
spend model, the time unit, the windows the household's summaries are taken over, the direct 90-day
spend forecast when the bundle has one (`models.customers.forecast`) and a card (training date, data,
measured figures). `score_households` turns RFM summaries into expected trips and spend over
a horizon, P(alive), the probability of no trip in the churn window, and a discounted CLV (`spend_inputs`
gives the spend model's inputs when its window is not the trip model's); `churn_band` gives a band and a
reason in words from the household's own rhythm ("your usual weekly trip has not happened for 5 weeks").
"""

from __future__ import annotations

from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from models.customers.btyd import (
    GammaGamma,
    TripModel,
    conditional_expected,
    expected_spend,
    p_alive,
    p_no_trip,
)
from models.customers.forecast import SpendForecast

F64 = npt.NDArray[np.float64]
PARAMS_FORMAT = 1
ChurnBand = Literal["active", "watch", "at_risk", "lapsed"]
LAPSED_BELOW = 0.2  # P(alive) below which a household counts as gone
AT_RISK_FROM = 0.5  # P(no trip in the churn window) from which it is at risk
WATCH_FROM = 0.25
OVERDUE_RATIO = 2.0  # days since the last trip / usual interval: "has not happened for ..."


class CustomerModelParams(msgspec.Struct, frozen=True, kw_only=True):
    """Fitted customer models as shipped in a bundle. Times in ``unit_days``-day units (7: weeks)."""

    params_format: int = PARAMS_FORMAT
    trips: TripModel
    spend: GammaGamma
    unit_days: float = 7.0
    window_days: int | None = None  # fitted on the last days only: summarise that window when scoring
    # The days the household's own repeat trips and mean spend per trip (spend_x, spend_zbar) are taken
    # from for the spend model (None: every day); when it differs from window_days the caller passes them.
    spend_window_days: int | None = None
    # The direct forecast of the spend in the next 90 days (models.customers.forecast); None in bundles
    # trained before it: the served 90-day spend is then expected trips x spend per trip.
    spend_forecast: SpendForecast | None = None
    card: dict[str, object] = {}


class HouseholdScores(msgspec.Struct, frozen=True, kw_only=True):
    """Per-household scores, arrays in the order of the input."""

    expected_trips: F64  # trips in the next `horizon_days`
    expected_spend: F64  # spend in the next `horizon_days`
    spend_per_trip: F64
    p_alive: F64
    p_churn: F64  # P(no trip in the next `churn_days`)
    clv: F64  # discounted expected spend over `clv_days`
    horizon_days: float
    churn_days: float
    clv_days: float


def score_households(
    params: CustomerModelParams,
    *,
    x: npt.ArrayLike,
    t_x_days: npt.ArrayLike,
    T_days: npt.ArrayLike,
    zbar: npt.ArrayLike,
    first_spend: npt.ArrayLike | None = None,
    spend_x: npt.ArrayLike | None = None,
    spend_zbar: npt.ArrayLike | None = None,
    horizon_days: float = 90.0,
    churn_days: float = 56.0,
    clv_days: float = 365.0,
    annual_discount: float = 0.10,
) -> HouseholdScores:
    """Score households from their summaries (x repeat trips, days from the first trip to the last and to
    today, mean spend of repeat trips, spend of the first trip for a covariate model). The spend per trip
    uses ``spend_x`` and ``spend_zbar`` when given (the household's repeat trips and their mean spend over
    ``params.spend_window_days``), else ``x`` and ``zbar``.

    CLV = sum over weeks k of E[trips in week k] x spend per trip / (1 + annual_discount)^(k weeks / year).
    """
    unit = params.unit_days
    xs = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x_days, dtype=np.float64) / unit
    big_t = np.asarray(T_days, dtype=np.float64) / unit
    z = None if first_spend is None else np.log1p(np.asarray(first_spend, dtype=np.float64))
    if params.trips.covariate is not None and z is None:
        z = np.full(xs.shape, params.trips.covariate_mean)  # the population's average household
    model = params.trips
    if (spend_x is None) != (spend_zbar is None):
        raise ValueError("score_households: pass both spend_x and spend_zbar, or neither")
    per_trip = (
        expected_spend(params.spend, xs, zbar)
        if spend_x is None or spend_zbar is None
        else expected_spend(params.spend, spend_x, spend_zbar)
    )
    trips = conditional_expected(model, horizon_days / unit, xs, t_x, big_t, z)
    weeks = np.arange(0.0, clv_days + 7.0, 7.0)
    weeks[-1] = clv_days
    cumulative = conditional_expected(
        model, weeks[:, None] / unit, xs[None, :], t_x[None, :], big_t[None, :], z
    )
    per_week = np.diff(cumulative, axis=0)
    discount = (1.0 + annual_discount) ** (-weeks[1:, None] / 365.25)
    return HouseholdScores(
        expected_trips=np.asarray(trips, dtype=np.float64),
        expected_spend=np.asarray(trips * per_trip, dtype=np.float64),
        spend_per_trip=per_trip,
        p_alive=p_alive(model, xs, t_x, big_t, z),
        p_churn=p_no_trip(model, churn_days / unit, xs, t_x, big_t, z),
        clv=np.asarray((per_week * discount).sum(axis=0) * per_trip, dtype=np.float64),
        horizon_days=horizon_days,
        churn_days=churn_days,
        clv_days=clv_days,
    )


def spend_inputs(
    params: CustomerModelParams,
    households: npt.NDArray[np.str_],
    *,
    customer: npt.ArrayLike,
    day: npt.ArrayLike,
    spend: npt.ArrayLike,
    end_day: int,
) -> tuple[F64, F64] | None:
    """(spend_x, spend_zbar) of ``households`` for `score_households`: their repeat trips and mean repeat
    spend over the last ``params.spend_window_days`` days before ``end_day`` (every day when None), from
    purchase rows (customer, day, spend). None when the spend window is the trip window: the trip
    summary's own x and zbar are the spend model's inputs. Households without rows there get x = 0 (the
    population's mean spend per trip)."""
    if params.spend_window_days == params.window_days:
        return None
    from models.customers.rfm import aligned, rfm_summary  # noqa: PLC0415 - as the edge imports it: lazily

    names = np.asarray(customer)
    days = np.asarray(day, dtype=np.int64)
    amounts = np.asarray(spend, dtype=np.float64)
    if params.spend_window_days is not None:
        keep = days >= end_day - params.spend_window_days
        names, days, amounts = names[keep], days[keep], amounts[keep]
    own = rfm_summary(names, days, amounts, calibration_end_day=end_day, unit_days=params.unit_days)
    return aligned(own, own.x, households, 0.0), aligned(own, own.zbar, households, 0.0)


def _rhythm(interval_days: float) -> str:
    if interval_days < 1.5:
        return "daily"
    if interval_days < 10:
        return "weekly"
    if interval_days < 21:
        return "fortnightly"
    if interval_days < 45:
        return "monthly"
    return f"every-{round(interval_days / 7)}-weeks"


def _span(days: float) -> str:
    if days < 14:
        whole = round(days)
        return f"{whole} day" if whole == 1 else f"{whole} days"
    weeks = round(days / 7)
    return f"{weeks} weeks"


def churn_band(
    *, p_alive: float, p_churn: float, days_since_last: float, mean_interval_days: float | None
) -> tuple[ChurnBand, str]:
    """The band (active / watch / at_risk / lapsed) and its reason, from the household's own rhythm."""
    if p_alive < LAPSED_BELOW:
        band: ChurnBand = "lapsed"
    elif p_churn >= AT_RISK_FROM:
        band = "at_risk"
    elif p_churn >= WATCH_FROM:
        band = "watch"
    else:
        band = "active"
    since = _span(days_since_last)
    if mean_interval_days is None or not np.isfinite(mean_interval_days) or mean_interval_days <= 0:
        return band, f"one trip so far, {since} ago"
    rhythm = _rhythm(mean_interval_days)
    if days_since_last >= OVERDUE_RATIO * mean_interval_days:
        return band, f"your usual {rhythm} trip has not happened for {since}"
    return band, f"you shop about every {_span(mean_interval_days)}; the last trip was {since} ago"
