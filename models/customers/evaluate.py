"""Held-out evaluation of the customer models: `evaluate_clv` (trips and spend after a cutoff), with its
baselines in the same run and seeded bootstrap CIs over customers (`models.customers.report` prints
them), and `train_customer_model`, the model to ship. `evaluate_churn` (no trip in the weeks after the
cutoff) is in `models.customers.evaluate_churn`.

Model choice uses calibration only: every candidate (BG/NBD, MBG/NBD, Pareto/NBD, each with and without
the log first-trip spend as covariate) is fitted on the calibration period cut at 20/39 and 26/39 of its
length and scored on the rest (pseudo-holdouts); the lowest mean RMSE is selected, then every candidate is
refitted on the whole calibration period. The spend per trip is chosen the same way among the Gamma-Gamma
variants of `models.customers.spend` (spend MAE with the selected trip model), and the direct 90-day
spend forecast among those of `models.customers.spend_forecast` (cross-validated on the horizon before the
cutoff). The holdout never fits or tunes anything.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from models.customers import btyd
from models.customers.btyd_selection import (
    CANDIDATES,
    Candidates,
    Fitted,
    candidate_name,
    covariate_values,
    fit_candidates,
    select_model,
)
from models.customers.cdnow import CALIBRATION_END, CDNOW, HOLDOUT_DAYS
from models.customers.forecast import SpendForecast
from models.customers.intervals import (
    Estimate,
    PairedGap,
    error_estimates,
    mean_estimate,
    paired_gap,
)
from models.customers.rfm import Purchases, load_purchases
from models.customers.scoring import CustomerModelParams
from models.customers.segments_breakdown import SegmentClvRow, clv_by_segment
from models.customers.segments_evaluate import segment_source
from models.customers.spend import (
    SPEND_CANDIDATES,
    SpendCandidates,
    SpendRow,
    fit_spend,
    select_spend,
    spend_per_trip,
    spend_rows,
    variant_named,
)
from models.customers.spend_forecast import ForecastReport, forecast_at, train_forecast
from models.errors import DatasetError
from models.history import PurchaseHistory, day_date, epoch_day

if TYPE_CHECKING:  # evaluate_churn imports this module's `_calibration` and `Role`
    from models.customers.evaluate_churn import ChurnReport

PUBLISHED_CDNOW = {  # Fader, Hardie & Lee (2005); Fader & Hardie's Pareto/NBD note
    "published bgnbd": btyd.TripModel(
        kind="bgnbd", params={"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    ),
    "published pareto_nbd": btyd.TripModel(
        kind="pareto_nbd", params={"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    ),
}
CDNOW_GOAL_RMSE = 1.60
CDNOW_GOAL_CORR = 0.63
Role = Literal["model", "baseline", "published"]


class ClvRow(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: Role
    mae: Estimate
    rmse: Estimate
    corr: Estimate | None  # None for a constant prediction
    spend_mae: Estimate | None = None
    log_likelihood: float | None = None
    params: dict[str, float] = {}


class ClvReport(msgspec.Struct, frozen=True, kw_only=True):
    task: Literal["clv"] = "clv"
    source: str
    calibration_end: str  # ISO date of the first holdout day
    horizon_days: float
    customers: int
    holdout_trips: float
    seed: int
    bootstrap: int
    selected: str
    selection_rmse: dict[str, float]  # mean pseudo-holdout RMSE per candidate (calibration only)
    rows: list[ClvRow]  # spend: each trip candidate's trips x the selected spend variant's spend per trip
    spend_model: btyd.GammaGamma  # the selected spend variant's
    spend_mae_vs_baseline: Estimate  # selected trips x selected spend minus the spend baseline (< 0: better)
    goals: dict[str, bool]
    seconds: float
    by_segment: list[SegmentClvRow] = []  # the selected model and the own-recent baselines per segment
    spend_selected: str = "gamma_gamma"  # the spend variant chosen on calibration (models.customers.spend)
    spend_rows: list[SpendRow] = []  # every spend variant with the selected trip model
    # CDNOW: the selected model's RMSE and correlation minus each published fit's (paired bootstrap)
    versus_published: dict[str, PairedGap] = {}
    # Direct spend forecasts chosen on the horizon before the cutoff (models.customers.spend_forecast);
    # None when the data before that pseudo-cutoff is shorter than the horizon (CDNOW's protocol)
    spend_forecast: ForecastReport | None = None


def _calibration(
    p: Purchases, cutoff: date | None, holdout_days: float, default_days: float | None = None
) -> tuple[int, int]:
    """(first day, first day after calibration): the cutoff, else CDNOW's 1997-10-01, else the data's
    last ``default_days`` (``holdout_days``); it must leave calibration and a full holdout."""
    if cutoff is not None:
        end = epoch_day(cutoff)
    elif p.source == CDNOW:
        end = epoch_day(CALIBRATION_END)
    else:
        end = int(p.day.max()) + 1 - int(default_days or holdout_days)
    start = int(p.day.min())
    if not start < end <= int(p.day.max()) + 1 - holdout_days:
        raise DatasetError(f"{p.source}: cutoff {day_date(end)} leaves no calibration or no full holdout")
    return start, end


def evaluate_clv(
    source: str,
    *,
    history: PurchaseHistory | None = None,
    cutoff: date | None = None,
    horizon_days: float = 90.0,
    candidates: Candidates = CANDIDATES,
    spend_candidates: SpendCandidates = SPEND_CANDIDATES,
    seed: int = 0,
    bootstrap: int = 1000,
    by_segment: bool = True,
) -> ClvReport:
    """Trips (and spend) per customer in the holdout after the cutoff vs the models' expectations.

    CDNOW: the published protocol (calibration to 1997-09-30, 39-week holdout, time in weeks), with the
    published fits scored as well. Other sources: the ``horizon_days`` after ``cutoff`` (default: the
    last ``horizon_days`` of the data); baselines: the customer's own trips and spend in the
    ``horizon_days`` before the cutoff. The spend per trip is the spend variant chosen on calibration
    with the selected trip model (`models.customers.spend`); every variant is reported.
    """
    began = time.perf_counter()
    p = load_purchases(source, history)
    if source == CDNOW and cutoff is None:
        horizon_days = float(HOLDOUT_DAYS)
    start, end = _calibration(p, cutoff, horizon_days)
    selected, selection = select_model(p, start, end, candidates)
    trip_candidate = next(c for c in candidates if candidate_name(*c) == selected)
    spend_selected, spend_selection = select_spend(p, start, end, trip_candidate, spend_candidates)
    s = p.summary(end, horizon_days, horizon_days)
    y = s.holdout_trips
    variants = spend_per_trip(p, end, s, spend_candidates)
    spend_model, per_trip = variants[spend_selected]
    fitted = fit_candidates(p, end, horizon_days, candidates)
    models: list[tuple[str, Role, Fitted]] = [(n, "model", f) for n, f in fitted.items()]
    if source == CDNOW:
        models += [(n, "published", Fitted(m, s, None)) for n, m in PUBLISHED_CDNOW.items()]
    spend_err = {}
    rows = []
    trips_of: dict[str, npt.NDArray[np.float64]] = {}
    for name, role, candidate in models:
        model, own = candidate.model, candidate.summary
        pred = trips_of[name] = candidate.trips(s, horizon_days)
        spend_pred = pred * per_trip
        spend_err[name] = np.abs(spend_pred - s.holdout_spend)
        mae, rmse, corr = error_estimates(pred, y, seed, bootstrap)
        err = spend_err[name]
        if name == selected:
            chosen_trips, chosen_spend = pred, spend_pred
        rows.append(
            ClvRow(
                name=name,
                role=role,
                mae=mae,
                rmse=rmse,
                corr=corr,
                spend_mae=mean_estimate(err, seed, bootstrap),
                log_likelihood=float(
                    np.sum(btyd.log_likelihood(model, own.x, own.t_x, own.T, covariate_values(own)))
                ),
                params=dict(model.params) | {f"coef_{k}": v for k, v in model.coef.items()},
            )
        )
    # The customer's own repeat trips and spend in the window of the same length before the cutoff (the
    # first trip excluded, as the models' x), scaled up when the customer is younger than the window.
    age = s.T * s.unit_days
    first_inside = age < horizon_days
    span = np.maximum(np.minimum(age, horizon_days), 7.0)
    scale = horizon_days / span
    own_trips = (s.trips_recent - first_inside) * scale
    baselines = {"zero": np.zeros_like(y), "own trips before cutoff": own_trips}
    spend_base_err = np.abs((s.spend_recent - first_inside * s.first_spend) * scale - s.holdout_spend)
    for name, pred in baselines.items():
        mae, rmse, corr = error_estimates(pred, y, seed, bootstrap)
        err = np.abs(pred * 0.0 - s.holdout_spend) if name == "zero" else spend_base_err
        spend = mean_estimate(err, seed, bootstrap)
        rows.append(ClvRow(name=name, role="baseline", mae=mae, rmse=rmse, corr=corr, spend_mae=spend))
    gap = spend_err[selected] - spend_base_err
    spend_table = spend_rows(
        variants,
        selected=spend_selected,
        selection=spend_selection,
        trips=chosen_trips,
        actual=s.holdout_spend,
        baseline_error=spend_base_err,
        seed=seed,
        rounds=bootstrap,
    )
    segment_rows = []
    if by_segment:
        segment_rows = clv_by_segment(
            segment_source(source, history, end, seed),
            s.customers,
            actual_trips=y,
            predicted_trips=chosen_trips,
            baseline_trips=own_trips,
            actual_spend=s.holdout_spend,
            predicted_spend=chosen_spend,
            baseline_spend=(s.spend_recent - first_inside * s.first_spend) * scale,
        )
    chosen = next(r for r in rows if r.name == selected)
    spend_gap = mean_estimate(gap, seed, bootstrap)
    goals = {"spend_mae_beats_own_recent_spend": spend_gap.high < 0}
    if source == CDNOW:
        goals |= {
            "rmse_le_1.60": chosen.rmse.value <= CDNOW_GOAL_RMSE,
            "corr_ge_0.63": chosen.corr is not None and chosen.corr.value >= CDNOW_GOAL_CORR,
        }
    return ClvReport(
        source=source,
        calibration_end=day_date(end).isoformat(),
        horizon_days=horizon_days,
        customers=s.size,
        holdout_trips=float(y.sum()),
        seed=seed,
        bootstrap=bootstrap,
        selected=selected,
        selection_rmse=selection,
        rows=rows,
        spend_model=spend_model,
        spend_mae_vs_baseline=spend_gap,
        goals=goals,
        seconds=round(time.perf_counter() - began, 2),
        by_segment=segment_rows,
        spend_selected=spend_selected,
        spend_rows=spend_table,
        versus_published={
            name: paired_gap(trips_of[selected], trips_of[name], y, seed, bootstrap)
            for name, role, _ in models
            if role == "published"
        },
        spend_forecast=forecast_at(
            p,
            (start, end, horizon_days),
            s,
            (trip_candidate, fitted[selected]),
            (variant_named(spend_selected, spend_candidates), per_trip),
            spend_base_err,
            seed=seed,
            rounds=bootstrap,
        ),
    )


def train_customer_model(
    source: str,
    *,
    history: PurchaseHistory | None = None,
    clv: ClvReport | None = None,
    churn: ChurnReport | None = None,
    candidates: Candidates = CANDIDATES,
    spend_candidates: SpendCandidates = SPEND_CANDIDATES,
) -> CustomerModelParams:
    """The model to ship: the trip candidate and then the spend variant chosen on calibration data (as
    `evaluate_clv` chooses them, with every day up to the end of the data as calibration), refitted on all
    of it; the card records the training data and, when given, the held-out reports' figures."""
    p = load_purchases(source, history)
    start, end = int(p.day.min()), int(p.day.max()) + 1
    selected, selection = select_model(p, start, end, candidates)
    kind, cov, window = next(c for c in candidates if candidate_name(*c) == selected)
    spend_selected, spend_selection = select_spend(p, start, end, (kind, cov, window), spend_candidates)
    spend_variant = variant_named(spend_selected, spend_candidates)
    fitted = fit_candidates(p, end, 0.0, ((kind, cov, window),))[selected]
    whole = p.summary(end)
    forecast = train_forecast(p, start, end, (kind, cov, window), spend_variant)
    measured: dict[str, object] = {}
    for report in (clv, churn):
        if report is not None:
            measured[report.task] = msgspec.to_builtins(report)
    card: dict[str, object] = {
        "trained": datetime.now(UTC).date().isoformat(),
        "source": source,
        "data": {
            "first_day": day_date(int(p.day.min())).isoformat(),
            "last_day": day_date(end - 1).isoformat(),
            "customers": whole.size,
        },
        "selected": selected,
        "selection_rmse": selection,
        "spend_selected": spend_selected,
        "spend_selection_mae": spend_selection,
        "spend_forecast": forecast,  # served as the 90-day spend (params.spend_forecast) when fitted
        "measured": measured,
    }
    return CustomerModelParams(
        trips=fitted.model,
        spend=fit_spend(p, end, spend_variant),
        window_days=window,
        spend_window_days=spend_variant.own_days,
        spend_forecast=_shipped_forecast(forecast),
        card=card,
    )


def _shipped_forecast(entry: dict[str, object] | None) -> SpendForecast | None:
    """The card's forecast entry (`train_forecast`) as the params' field; None when none was fitted."""
    if entry is None or "coef" not in entry:
        return None
    fields = {"name": entry["selected"], "coef": entry["coef"], "horizon_days": entry["horizon_days"]}
    return msgspec.convert(fields, SpendForecast)
