"""Held-out evaluation of the customer models: `evaluate_clv` (trips and spend after a cutoff) and
`evaluate_churn` (no trip in the weeks after it), each with its baselines in the same run and seeded
bootstrap CIs over customers (`models.customers.report` prints them).

Model choice uses calibration only: every candidate (BG/NBD, MBG/NBD, Pareto/NBD, each with and without
the log first-trip spend as covariate) is fitted on the calibration period cut at 20/39 and 26/39 of its
length and scored on the rest (pseudo-holdouts); the lowest mean RMSE is selected, then every candidate is
refitted on the whole calibration period. The holdout never fits or tunes anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from models.customers import btyd
from models.customers.btyd import (
    CANDIDATES,
    Candidates,
    Fitted,
    covariate_values,
    fit_candidates,
    select_model,
)
from models.customers.cdnow import CALIBRATION_END, CDNOW, HOLDOUT_DAYS
from models.customers.rfm import Purchases, load_purchases
from models.customers.scoring import CustomerModelParams
from models.customers.segments_breakdown import (
    SegmentChurnRow,
    SegmentClvRow,
    churn_by_segment,
    clv_by_segment,
)
from models.customers.segments_evaluate import segment_source
from models.errors import DatasetError
from models.history import PurchaseHistory, day_date, epoch_day
from models.metrics import ece

F64 = npt.NDArray[np.float64]
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


class Estimate(msgspec.Struct, frozen=True):
    """A figure and its bootstrap 95% interval (percentiles)."""

    value: float
    low: float
    high: float


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
    rows: list[ClvRow]
    spend_model: btyd.GammaGamma
    spend_mae_vs_baseline: Estimate  # selected model minus the spend baseline (< 0: better)
    goals: dict[str, bool]
    seconds: float
    by_segment: list[SegmentClvRow] = []  # the selected model and the own-recent baselines per segment


class ChurnRow(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: Role
    auc: Estimate
    auc_minus_baseline: dict[str, Estimate] = {}  # model rows only
    ece: float | None = None  # probabilities only
    brier: float | None = None


class ChurnReport(msgspec.Struct, frozen=True, kw_only=True):
    task: Literal["churn"] = "churn"
    source: str
    cutoff: str
    window_days: float
    households: int
    churners: int
    churn_rate: Estimate
    seed: int
    bootstrap: int
    selected: str
    rows: list[ChurnRow]
    goal_met: bool  # the selected model's P(churn) beats every baseline with the CI of the gap above 0
    seconds: float
    by_segment: list[SegmentChurnRow] = []  # AUCs per segment (the selected model's P(no trip))


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


def _bootstrap(
    n: int, seed: int, rounds: int, statistic: Callable[[npt.NDArray[np.int64]], F64], point: float
) -> Estimate:
    idx = np.random.default_rng(seed).integers(0, n, size=(rounds, n))
    return _estimate(float(point), statistic(idx))


def _resampled_mean(values: F64) -> Callable[[npt.NDArray[np.int64]], F64]:
    return lambda idx: np.asarray(values[idx].mean(axis=1), dtype=np.float64)


def _corr_rows(pred: F64, y: F64) -> F64:
    pc = pred - pred.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((pc * yc).sum(-1) / np.sqrt((pc**2).sum(-1) * (yc**2).sum(-1)), dtype=np.float64)


def _errors(pred: F64, y: F64, seed: int, rounds: int) -> tuple[Estimate, Estimate, Estimate | None]:
    n = y.size
    err = pred - y
    mae = _bootstrap(n, seed, rounds, lambda i: np.abs(err[i]).mean(1), float(np.abs(err).mean()))
    rmse = _bootstrap(
        n, seed, rounds, lambda i: np.sqrt((err[i] ** 2).mean(1)), float(np.sqrt((err**2).mean()))
    )
    if np.ptp(pred) == 0:
        return mae, rmse, None
    corr = _bootstrap(n, seed, rounds, lambda i: _corr_rows(pred[i], y[i]), float(_corr_rows(pred, y)))
    return mae, rmse, corr


def evaluate_clv(
    source: str,
    *,
    history: PurchaseHistory | None = None,
    cutoff: date | None = None,
    horizon_days: float = 90.0,
    candidates: Candidates = CANDIDATES,
    seed: int = 0,
    bootstrap: int = 1000,
    by_segment: bool = True,
) -> ClvReport:
    """Trips (and spend) per customer in the holdout after the cutoff vs the models' expectations.

    CDNOW: the published protocol (calibration to 1997-09-30, 39-week holdout, time in weeks), with the
    published fits scored as well. Other sources: the ``horizon_days`` after ``cutoff`` (default: the
    last ``horizon_days`` of the data); baselines: the customer's own trips and spend in the
    ``horizon_days`` before the cutoff.
    """
    began = time.perf_counter()
    p = load_purchases(source, history)
    if source == CDNOW and cutoff is None:
        horizon_days = float(HOLDOUT_DAYS)
    start, end = _calibration(p, cutoff, horizon_days)
    selected, selection = select_model(p, start, end, candidates)
    s = p.summary(end, horizon_days, horizon_days)
    y = s.holdout_trips
    spend_model = btyd.fit_gamma_gamma(s.x, s.zbar)
    per_trip = btyd.expected_spend(spend_model, s.x, s.zbar)
    fitted = fit_candidates(p, end, horizon_days, candidates)
    models: list[tuple[str, Role, Fitted]] = [(n, "model", f) for n, f in fitted.items()]
    if source == CDNOW:
        models += [(n, "published", Fitted(m, s, None)) for n, m in PUBLISHED_CDNOW.items()]
    spend_err = {}
    rows = []
    for name, role, candidate in models:
        model, own = candidate.model, candidate.summary
        pred = candidate.trips(s, horizon_days)
        spend_pred = pred * per_trip
        spend_err[name] = np.abs(spend_pred - s.holdout_spend)
        mae, rmse, corr = _errors(pred, y, seed, bootstrap)
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
                spend_mae=_bootstrap(y.size, seed, bootstrap, _resampled_mean(err), float(err.mean())),
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
        mae, rmse, corr = _errors(pred, y, seed, bootstrap)
        err = np.abs(pred * 0.0 - s.holdout_spend) if name == "zero" else spend_base_err
        spend = _bootstrap(y.size, seed, bootstrap, _resampled_mean(err), float(err.mean()))
        rows.append(ClvRow(name=name, role="baseline", mae=mae, rmse=rmse, corr=corr, spend_mae=spend))
    gap = spend_err[selected] - spend_base_err
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
    goals = {
        "spend_mae_beats_own_recent_spend": _bootstrap(
            y.size, seed, bootstrap, lambda i: gap[i].mean(1), 0
        ).high
        < 0
    }
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
        spend_mae_vs_baseline=_bootstrap(
            y.size, seed, bootstrap, lambda i: gap[i].mean(1), float(gap.mean())
        ),
        goals=goals,
        seconds=round(time.perf_counter() - began, 2),
        by_segment=segment_rows,
    )


def _auc_rows(score: F64, label: npt.NDArray[np.bool_]) -> F64:
    """ROC AUC per row (Mann-Whitney with mid-ranks for ties)."""
    ranks = rankdata(score, axis=-1)
    positives = label.sum(-1)
    negatives = label.shape[-1] - positives
    with np.errstate(invalid="ignore", divide="ignore"):
        u = (ranks * label).sum(-1) - positives * (positives + 1) / 2.0
        return np.asarray(u / (positives * negatives), dtype=np.float64)


def evaluate_churn(
    source: str,
    *,
    history: PurchaseHistory | None = None,
    cutoff: date | None = None,
    window_days: float = 56.0,
    candidates: Candidates = CANDIDATES,
    seed: int = 0,
    bootstrap: int = 1000,
    by_segment: bool = True,
) -> ChurnReport:
    """Churn = no trip in the ``window_days`` after the cutoff (default: 90 days before the data's end,
    the CLV task's cutoff; CDNOW: 1997-10-01). Scores of customers with a trip before the cutoff:
    the selected model's P(no trip in the window) and 1 - P(alive), every candidate's P(no trip), and the
    baselines days since the last trip and that over the customer's own mean interval (for one-trip
    customers the median of everyone's mean interval)."""
    began = time.perf_counter()
    p = load_purchases(source, history)
    start, end = _calibration(p, cutoff, window_days, 90.0)
    selected, _ = select_model(p, start, end, candidates)
    s = p.summary(end, window_days, window_days)
    label = s.holdout_trips == 0
    t_window = window_days / s.unit_days
    interval = np.where(
        np.isfinite(s.mean_interval_days), s.mean_interval_days, np.nanmedian(s.mean_interval_days)
    )
    scores: dict[str, F64] = {}
    for name, fitted in fit_candidates(p, end, window_days, candidates).items():
        m, own, z = fitted.model, fitted.summary, covariate_values(fitted.summary)
        scores[f"{name} P(no trip)"] = fitted.aligned(
            btyd.p_no_trip(m, t_window, own.x, own.t_x, own.T, z), s, 1.0
        )
        if name == selected:
            dead = 1.0 - btyd.p_alive(m, own.x, own.t_x, own.T, z)
            scores[f"{name} 1 - P(alive)"] = fitted.aligned(dead, s, 1.0)
    baselines = {
        "days since last trip": s.last_gap_days,
        "days since last / own mean interval": s.last_gap_days / np.maximum(interval, 1.0),
    }
    n = s.size
    idx = np.random.default_rng(seed).integers(0, n, size=(bootstrap, n))
    boot_label = label[idx]
    boot_auc = {name: _auc_rows(score[idx], boot_label) for name, score in baselines.items()}
    rows = [
        ChurnRow(name=name, role="baseline", auc=_estimate(float(_auc_rows(score, label)), boot_auc[name]))
        for name, score in baselines.items()
    ]
    for name, score in scores.items():
        auc = _auc_rows(score[idx], boot_label)
        point = float(_auc_rows(score, label))
        gaps = {
            b: _estimate(point - float(_auc_rows(v, label)), auc - boot_auc[b]) for b, v in baselines.items()
        }
        brier = float(np.mean((score - label) ** 2))
        rows.append(
            ChurnRow(
                name=name,
                role="model",
                auc=_estimate(point, auc),
                auc_minus_baseline=gaps,
                ece=ece(score, label),
                brier=brier,
            )
        )
    chosen = next(r for r in rows if r.name == f"{selected} P(no trip)")
    segment_rows = []
    if by_segment:
        segment_rows = churn_by_segment(
            segment_source(source, history, end, seed),
            s.customers,
            churned=label,
            model_score=scores[f"{selected} P(no trip)"],
            baseline_scores=baselines,
        )
    return ChurnReport(
        source=source,
        cutoff=day_date(end).isoformat(),
        window_days=window_days,
        households=n,
        churners=int(label.sum()),
        churn_rate=_estimate(float(label.mean()), boot_label.mean(1)),
        seed=seed,
        bootstrap=bootstrap,
        selected=selected,
        rows=rows,
        goal_met=all(g.low > 0 for g in chosen.auc_minus_baseline.values()),
        seconds=round(time.perf_counter() - began, 2),
        by_segment=segment_rows,
    )


def train_customer_model(
    source: str,
    *,
    history: PurchaseHistory | None = None,
    clv: ClvReport | None = None,
    churn: ChurnReport | None = None,
    candidates: Candidates = CANDIDATES,
) -> CustomerModelParams:
    """The model to ship: the candidate chosen on calibration data (as `evaluate_clv` chooses it, with
    every day up to the end of the data as calibration), refitted on all of it with the Gamma-Gamma spend
    model; the card records the training data and, when given, the held-out reports' figures."""
    p = load_purchases(source, history)
    end = int(p.day.max()) + 1
    selected, selection = select_model(p, int(p.day.min()), end, candidates)
    kind, cov, window = next(c for c in candidates if btyd.candidate_name(*c) == selected)
    fitted = fit_candidates(p, end, 0.0, ((kind, cov, window),))[selected]
    whole = p.summary(end)
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
        "measured": measured,
    }
    return CustomerModelParams(
        trips=fitted.model, spend=btyd.fit_gamma_gamma(whole.x, whole.zbar), window_days=window, card=card
    )


def _estimate(point: float, values: F64) -> Estimate:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Estimate(point, float("nan"), float("nan"))
    low, high = np.percentile(finite, [2.5, 97.5])
    return Estimate(point, float(low), float(high))
