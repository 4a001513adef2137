"""The candidate trip models and the choice among them on calibration data only: every candidate
(`CANDIDATES`: BG/NBD, MBG/NBD and Pareto/NBD of `models.customers.btyd`, with and without the log
first-trip spend as covariate, or fitted on the last 91 days only) is fitted by `fit_candidates`, and
`select_model` picks the lowest mean RMSE over pseudo-holdouts inside the calibration period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.customers.btyd import TripKind, TripModel, conditional_expected, fit_trip_model
from models.customers.rfm import Purchases, RfmSummary, aligned

F64 = npt.NDArray[np.float64]

Candidates = tuple[tuple[TripKind, bool, int | None], ...]  # (kind, with the covariate, window days)
CANDIDATES: Candidates = (
    *((kind, cov, None) for kind in ("bgnbd", "mbgnbd", "pareto_nbd") for cov in (False, True)),
    *((kind, False, 91) for kind in ("bgnbd", "mbgnbd", "pareto_nbd")),
)
PSEUDO_SPLITS = (20 / 39, 26 / 39)
COVARIATE = "log_first_spend"


def candidate_name(kind: str, covariate: bool, window: int | None) -> str:
    """`pareto_nbd`, `pareto_nbd+log_first_spend`, `mbgnbd@91d`."""
    return kind + (f"+{COVARIATE}" if covariate else "") + (f"@{window}d" if window else "")


def covariate_values(s: RfmSummary) -> F64:
    """The covariate of every customer of a summary: ln(1 + spend of the first trip)."""
    return np.asarray(np.log1p(s.first_spend), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Fitted:
    """A candidate fitted on its summary: the whole calibration period, or only its last ``window``
    days (customers are then born at their first trip in the window; those without one are absent)."""

    model: TripModel
    summary: RfmSummary
    window: int | None

    def aligned(self, values: F64, full: RfmSummary, absent: float) -> F64:
        """``values`` (per customer of ``summary``) in the order of ``full``; ``absent`` for the others."""
        return aligned(self.summary, values, full.customers, absent)

    def trips(self, full: RfmSummary, horizon_days: float) -> F64:
        """Expected trips in the ``horizon_days`` after calibration, for ``full``'s customers."""
        s = self.summary
        own = conditional_expected(
            self.model, horizon_days / s.unit_days, s.x, s.t_x, s.T, covariate_values(s)
        )
        return self.aligned(own, full, 0.0)


def fit_candidates(
    p: Purchases, end: int, holdout_days: float, candidates: Candidates = CANDIDATES
) -> dict[str, Fitted]:
    """Every candidate trip model fitted on the calibration period before ``end``."""
    out = {}
    for kind, cov, window in candidates:
        s = (p.since(end - window) if window else p).summary(end, holdout_days)
        model = fit_trip_model(
            kind, s.x, s.t_x, s.T, covariate=(COVARIATE, covariate_values(s)) if cov else None
        )
        out[candidate_name(kind, cov, window)] = Fitted(model, s, window)
    return out


def select_model(
    p: Purchases, start: int, end: int, candidates: Candidates = CANDIDATES
) -> tuple[str, dict[str, float]]:
    """The candidate with the lowest mean RMSE over pseudo-holdouts inside calibration [start, end)."""
    errors: dict[str, list[float]] = {candidate_name(*c): [] for c in candidates}
    for share in PSEUDO_SPLITS:
        cut = start + round(share * (end - start))
        s = p.summary(cut, end - cut, end - cut)
        for name, fitted in fit_candidates(p, cut, end - cut, candidates).items():
            errors[name].append(float(np.sqrt(np.mean((fitted.trips(s, end - cut) - s.holdout_trips) ** 2))))
    mean = {name: float(np.mean(v)) for name, v in errors.items()}
    return min(mean, key=lambda n: mean[n]), mean
