"""Spend per trip for the spend forecast (expected trips x spend per trip): the Gamma-Gamma variants
offered as candidates, their choice on calibration data only, and their held-out rows.

A variant fits the Gamma-Gamma model (Fader & Hardie 2013) on the RFM summaries of one period and
applies it to each household's repeat trips and mean repeat spend (x, zbar) of one period:

* ``gamma_gamma``: fitted and applied on the whole calibration history (the only model before);
* ``gamma_gamma@91d``: fitted and applied on the last 91 days of calibration (households born at their
  first trip in the window, as for the ``@91d`` trip models): the idea docs/customer_models.md recorded
  before it was scored;
* ``gamma_gamma@91d/whole-fit``: the population's parameters fitted on the whole history, the household's
  own x and zbar from the last 91 days (the prior from the long record, the evidence from the recent one).

A household without a repeat trip in the applied period gets the population mean p gamma / (q - 1).

Choice (`select_spend`): the selected trip candidate is refitted on calibration cut at the same fractions
as `btyd_selection.select_model`'s pseudo-holdouts; every variant's spend per trip at the cut times those trips is
scored (spend MAE) on the rest of calibration, and the lowest mean MAE wins. The holdout chooses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt

from models.customers.btyd import GammaGamma, TripKind, expected_spend, fit_gamma_gamma
from models.customers.btyd_selection import PSEUDO_SPLITS, candidate_name, fit_candidates
from models.customers.intervals import Estimate, mean_estimate
from models.customers.rfm import Purchases, RfmSummary, aligned

F64 = npt.NDArray[np.float64]
SPEND_WINDOW_DAYS = 91  # the @91d trip models' window


@dataclass(frozen=True, slots=True)
class SpendVariant:
    """Where a Gamma-Gamma spend model is fitted and where the household's own x and zbar come from:
    the last ``fit_days`` / ``own_days`` of calibration (None: all of it)."""

    fit_days: int | None
    own_days: int | None

    @property
    def name(self) -> str:
        """`gamma_gamma`, `gamma_gamma@91d`, `gamma_gamma@91d/whole-fit`."""
        if self.own_days is None:
            return "gamma_gamma" if self.fit_days is None else f"gamma_gamma/fit@{self.fit_days}d"
        return f"gamma_gamma@{self.own_days}d" + ("/whole-fit" if self.fit_days is None else "")


SpendCandidates = tuple[SpendVariant, ...]
SPEND_CANDIDATES: SpendCandidates = (
    SpendVariant(None, None),
    SpendVariant(SPEND_WINDOW_DAYS, SPEND_WINDOW_DAYS),
    SpendVariant(None, SPEND_WINDOW_DAYS),
)


class SpendRow(msgspec.Struct, frozen=True, kw_only=True):
    """A spend variant on the holdout: the selected trip model's trips times its spend per trip."""

    name: str
    selected: bool
    selection_mae: float  # mean pseudo-holdout spend MAE (calibration only): what chose the variant
    params: GammaGamma  # fitted on the whole calibration period (or its window)
    spend_per_trip_mean: float
    spend_mae: Estimate
    minus_baseline: Estimate  # spend MAE minus the own-recent-spend baseline's, paired (< 0: better)


def _summary(p: Purchases, end: int, days: int | None) -> RfmSummary:
    return (p.since(end - days) if days else p).summary(end)


def fit_spend(p: Purchases, end: int, variant: SpendVariant) -> GammaGamma:
    """The variant's Gamma-Gamma fitted on the calibration period before day ``end`` (or its window)."""
    s = _summary(p, end, variant.fit_days)
    return fit_gamma_gamma(s.x, s.zbar)


def per_trip(model: GammaGamma, p: Purchases, end: int, variant: SpendVariant, full: RfmSummary) -> F64:
    """E[spend per trip] of ``full``'s customers from their x and zbar in the variant's period."""
    own = _summary(p, end, variant.own_days)
    population = float(expected_spend(model, 0.0, 0.0))
    return aligned(own, expected_spend(model, own.x, own.zbar), full.customers, population)


def spend_per_trip(
    p: Purchases, end: int, full: RfmSummary, candidates: SpendCandidates = SPEND_CANDIDATES
) -> dict[str, tuple[GammaGamma, F64]]:
    """Every variant fitted before ``end``: its model and the spend per trip of ``full``'s customers."""
    fits: dict[int | None, GammaGamma] = {}
    out = {}
    for variant in candidates:
        if variant.fit_days not in fits:
            fits[variant.fit_days] = fit_spend(p, end, variant)
        model = fits[variant.fit_days]
        out[variant.name] = (model, per_trip(model, p, end, variant, full))
    return out


def select_spend(
    p: Purchases,
    start: int,
    end: int,
    trips: tuple[TripKind, bool, int | None],
    candidates: SpendCandidates = SPEND_CANDIDATES,
) -> tuple[str, dict[str, float]]:
    """The variant with the lowest mean spend MAE over the pseudo-holdouts inside calibration
    [start, end), with the trip candidate ``trips`` forecasting the trips."""
    errors: dict[str, list[float]] = {v.name: [] for v in candidates}
    for share in PSEUDO_SPLITS:
        cut = start + round(share * (end - start))
        s = p.summary(cut, end - cut, end - cut)
        forecast = fit_candidates(p, cut, end - cut, (trips,))[candidate_name(*trips)].trips(s, end - cut)
        for name, (_, spend) in spend_per_trip(p, cut, s, candidates).items():
            errors[name].append(float(np.mean(np.abs(forecast * spend - s.holdout_spend))))
    mean = {name: float(np.mean(v)) for name, v in errors.items()}
    return min(mean, key=lambda n: mean[n]), mean


def variant_named(name: str, candidates: SpendCandidates = SPEND_CANDIDATES) -> SpendVariant:
    """The candidate called ``name``."""
    return next(v for v in candidates if v.name == name)


def spend_rows(
    variants: dict[str, tuple[GammaGamma, F64]],
    *,
    selected: str,
    selection: dict[str, float],
    trips: F64,
    actual: F64,
    baseline_error: F64,
    seed: int,
    rounds: int,
) -> list[SpendRow]:
    """Every variant's holdout spend MAE (``trips`` x its spend per trip against ``actual``) and its
    paired gap to the baseline's absolute errors, on the same bootstrap resamples."""
    rows = []
    for name, (model, spend) in variants.items():
        error = np.abs(trips * spend - actual)
        rows.append(
            SpendRow(
                name=name,
                selected=name == selected,
                selection_mae=selection[name],
                params=model,
                spend_per_trip_mean=float(spend.mean()),
                spend_mae=mean_estimate(error, seed, rounds),
                minus_baseline=mean_estimate(error - baseline_error, seed, rounds),
            )
        )
    return rows
