"""Purchase histories as RFM summaries: what the buy-till-you-die models are fitted on and scored with.

Per customer, in model time units (weeks by default): the first trip is the customer's birth and is not
counted; ``x`` = repeat trips in the calibration period, ``t_x`` = time of the last trip since the first
(0 when x = 0), ``T`` = time from the first trip to the last day of calibration (times are between trip
days, so a trip on the last day has t_x = T; this is the published CDNOW summary's convention). Trips on the same calendar
day count as one (their spend is summed), as in the CDNOW data the published fits use. ``zbar`` is the
mean spend of the repeat trips (0 when x = 0), the Gamma-Gamma model's input. A holdout period after the
calibration end adds the number of trips and the spend in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.datasets import SIMULATED, load_source
from models.errors import DatasetError
from models.history import PurchaseHistory

F64 = npt.NDArray[np.float64]
DAYS_PER_WEEK = 7.0


@dataclass(frozen=True, slots=True, eq=False)
class RfmSummary:
    """Calibration summary (and optional holdout outcome) of each customer; arrays of equal length."""

    customers: npt.NDArray[np.str_]
    x: F64  # repeat trips in calibration
    t_x: F64  # time of the last trip since the first (model time units)
    T: F64  # time from the first trip to the last day of calibration
    zbar: F64  # mean spend of the repeat trips (0 when x = 0)
    first_spend: F64  # spend of the first trip
    last_gap_days: F64  # days from the last trip to the end of calibration
    mean_interval_days: F64  # the customer's own mean days between trips (NaN when x = 0)
    spend_recent: F64  # spend in the `recent_days` before the end of calibration
    trips_recent: F64  # trips in the `recent_days` before the end of calibration
    holdout_trips: F64  # trips in the holdout period (NaN without one)
    holdout_spend: F64  # spend in the holdout period (NaN without one)
    first_day: F64  # day (source's day numbers) of the first trip
    calibration_end_day: float  # the first day after calibration
    unit_days: float  # days per model time unit
    holdout_days: float  # length of the holdout period in days (0 without one)
    recent_days: float

    @property
    def size(self) -> int:
        return int(self.x.size)

    def select(self, mask: npt.NDArray[np.bool_]) -> RfmSummary:
        """The customers where ``mask`` is true."""
        return RfmSummary(
            self.customers[mask],
            self.x[mask],
            self.t_x[mask],
            self.T[mask],
            self.zbar[mask],
            self.first_spend[mask],
            self.last_gap_days[mask],
            self.mean_interval_days[mask],
            self.spend_recent[mask],
            self.trips_recent[mask],
            self.holdout_trips[mask],
            self.holdout_spend[mask],
            self.first_day[mask],
            self.calibration_end_day,
            self.unit_days,
            self.holdout_days,
            self.recent_days,
        )


def rfm_summary(
    customer: npt.ArrayLike,
    day: npt.ArrayLike,
    spend: npt.ArrayLike,
    *,
    calibration_end_day: float,
    holdout_days: float = 0.0,
    unit_days: float = DAYS_PER_WEEK,
    recent_days: float = 90.0,
) -> RfmSummary:
    """Summarise purchase rows (customer id, integer day number, spend) into an `RfmSummary`.

    Calibration is days < ``calibration_end_day``; the holdout is the ``holdout_days`` after it.
    Customers whose first trip is on or after the calibration end are left out (they were not born yet).
    """
    cust = np.asarray(customer)
    d = np.asarray(day, dtype=np.int64)
    s = np.asarray(spend, dtype=np.float64)
    names, code = np.unique(cust, return_inverse=True)
    # One trip per customer and day: aggregate rows by (customer, day).
    key = code.astype(np.int64) * (1 << 32) + (d - d.min() if d.size else d)
    trip_key, trip_of_row = np.unique(key, return_inverse=True)
    trip_spend = _sum_by(trip_of_row, s, trip_key.size)
    trip_cust = (trip_key >> 32).astype(np.int64)
    trip_day = (trip_key & ((1 << 32) - 1)) + (d.min() if d.size else 0)
    end = float(calibration_end_day)
    n = names.size
    in_cal = trip_day < end
    in_hold = (trip_day >= end) & (trip_day < end + holdout_days)
    cal_count = np.bincount(trip_cust[in_cal], minlength=n).astype(np.float64)
    born = cal_count > 0
    first = np.full(n, np.inf)
    np.minimum.at(first, trip_cust[in_cal], trip_day[in_cal].astype(np.float64))
    last = np.full(n, -np.inf)
    np.maximum.at(last, trip_cust[in_cal], trip_day[in_cal].astype(np.float64))
    cal_spend = _sum_by(trip_cust[in_cal], trip_spend[in_cal], n)
    is_first = in_cal & (trip_day == first[trip_cust])
    first_spend = _sum_by(trip_cust[is_first], trip_spend[is_first], n)
    recent = in_cal & (trip_day >= end - recent_days)
    spend_recent = _sum_by(trip_cust[recent], trip_spend[recent], n)
    x = np.maximum(cal_count - 1.0, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        zbar = np.where(x > 0, (cal_spend - first_spend) / np.maximum(x, 1.0), 0.0)
        mean_interval = np.where(x > 0, (last - first) / np.maximum(x, 1.0), np.nan)
    nan = np.full(n, np.nan)
    holdout_trips = np.bincount(trip_cust[in_hold], minlength=n).astype(np.float64) if holdout_days else nan
    holdout_spend = _sum_by(trip_cust[in_hold], trip_spend[in_hold], n) if holdout_days else nan
    summary = RfmSummary(
        customers=names.astype(str),
        x=x,
        t_x=np.where(born, (last - first) / unit_days, 0.0),
        T=np.where(born, (end - 1.0 - first) / unit_days, 0.0),
        zbar=zbar,
        first_spend=first_spend,
        last_gap_days=np.where(born, end - last, np.nan),
        mean_interval_days=mean_interval,
        spend_recent=spend_recent,
        trips_recent=np.bincount(trip_cust[recent], minlength=n).astype(np.float64),
        holdout_trips=holdout_trips,
        holdout_spend=holdout_spend,
        first_day=first,
        calibration_end_day=end,
        unit_days=float(unit_days),
        holdout_days=float(holdout_days),
        recent_days=float(recent_days),
    )
    return summary.select(born)


def aligned(own: RfmSummary, values: F64, customers: npt.NDArray[np.str_], absent: float) -> F64:
    """``values`` (one per customer of ``own``, e.g. a window's summary) for ``customers``; ``absent`` for
    those ``own`` lacks. ``own`` lists its customers sorted, as `rfm_summary` builds it."""
    position = np.searchsorted(own.customers, customers)
    position = np.minimum(position, max(own.size - 1, 0))
    found = own.customers[position] == customers if own.size else position < 0
    return np.asarray(np.where(found, values[position] if values.size else absent, absent), dtype=np.float64)


def _sum_by(code: npt.NDArray[np.int64], weights: F64, n: int) -> F64:
    return np.asarray(np.bincount(code, weights=weights, minlength=n), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Purchases:
    """Purchase rows of one source: customer, day number, spend."""

    source: str
    customer: npt.NDArray[np.str_]
    day: npt.NDArray[np.int64]
    spend: F64

    def summary(self, end: int, holdout_days: float = 0.0, recent_days: float = 90.0) -> RfmSummary:
        """The RFM summary (weeks) of calibration before day ``end`` and the holdout after it."""
        return rfm_summary(
            self.customer,
            self.day,
            self.spend,
            calibration_end_day=end,
            holdout_days=holdout_days,
            recent_days=recent_days,
        )

    def since(self, day: int) -> Purchases:
        """The rows on or after ``day``."""
        keep = self.day >= day
        return Purchases(self.source, self.customer[keep], self.day[keep], self.spend[keep])


def load_purchases(source: str, history: PurchaseHistory | None = None) -> Purchases:
    """`cdnow`, `completejourney`, a history file, or `simulated` (then ``history`` is the simulation's)."""
    from models.customers.cdnow import CDNOW, load_cdnow_transactions  # noqa: PLC0415 - cdnow imports rfm

    if source == CDNOW:
        customer, day, spend = load_cdnow_transactions()
        return Purchases(source, customer, day, spend)
    if history is None:
        if source == SIMULATED:
            raise DatasetError("source 'simulated': pass the simulated history (the CLI builds it)")
        history = load_source(source)
    names = np.asarray(history.households, dtype=str)
    spend = history.qty.astype(np.float64) * history.price.astype(np.float64)
    return Purchases(source, names[history.household], history.day.astype(np.int64), spend)


def history_rfm(
    history: PurchaseHistory,
    calibration_end_day: int,
    *,
    holdout_days: float = 0.0,
    unit_days: float = DAYS_PER_WEEK,
    recent_days: float = 90.0,
) -> RfmSummary:
    """The RFM summary of a `PurchaseHistory` (trip = a household's shopping day; spend = qty x price)."""
    spend = history.qty.astype(np.float64) * history.price.astype(np.float64)
    return rfm_summary(
        np.asarray(history.households, dtype=str)[history.household],
        history.day,
        spend,
        calibration_end_day=calibration_end_day,
        holdout_days=holdout_days,
        unit_days=unit_days,
        recent_days=recent_days,
    )


def trip_days(
    customer: npt.ArrayLike, day: npt.ArrayLike
) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Distinct (customer, day) trips: (customer names, customer code per trip, day per trip)."""
    names, code = np.unique(np.asarray(customer), return_inverse=True)
    pairs = np.unique(np.stack([code.astype(np.int64), np.asarray(day, dtype=np.int64)], axis=1), axis=0)
    return names.astype(str), pairs[:, 0], pairs[:, 1]
