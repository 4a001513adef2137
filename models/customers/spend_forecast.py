"""Direct 90-day spend forecasts beside the buy-till-you-die product (expected trips x spend per trip):
candidates that combine the household's own recent spend with the models' figures, fitted and chosen on
calibration data only, and their held-out rows against the own-recent-spend baseline.

Calibration for a cutoff ``end``: the pseudo-cutoff ``c = end - horizon``; features from the days before
``c`` (the selected trip model and spend variant refitted there), target = each household's spend in
``[c, end)``. The candidates (`FORECAST_CANDIDATES`; every prediction floored at 0):

* ``btyd``: the selected trip model's expected trips x the selected spend per trip (no parameter);
* ``own90``: the baseline itself, the household's own spend in the last 90 days (no parameter);
* ``blend``: ``w own90 + (1 - w) btyd``, ``w`` on a 0.01 grid in [0, 1] minimising the absolute error;
* ``l1_small``: a median (L1) regression on ``[1, own90, btyd]``;
* ``l1_full``: a median regression on every feature of `FEATURES` (``s180h`` only when the data before
  the pseudo-cutoff spans 180 days).

Choice (`select_forecast`): 5-fold cross-validation over the households of the pseudo-window (seeded);
the lowest held-out MAE wins, ties to fewer parameters. The winner is refitted on every household of the
pseudo-window and applied to the features at ``end``. A forecaster is a linear form in named features
(`SpendForecaster`), so it can be evaluated with numpy from its coefficients alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import linprog

from models.customers import btyd
from models.customers.btyd_selection import Fitted, candidate_name, covariate_values, fit_candidates
from models.customers.forecast import (
    FEATURES,
    INTERCEPT,
    LONG_DAYS,
    Features,
    history_features,
    linear_forecast,
)
from models.customers.intervals import Estimate, mean_estimate
from models.customers.rfm import Purchases, RfmSummary
from models.customers.spend import SpendVariant, spend_per_trip
from models.errors import ModelsError, TrainingError

F64 = npt.NDArray[np.float64]
FORECAST_CANDIDATES = ("btyd", "own90", "blend", "l1_small", "l1_full")
FOLDS = 5


@dataclass(frozen=True, slots=True)
class SpendForecaster:
    """A fitted forecast: ``max(0, sum_i coef_i x feature_i)`` (feature ``"1"`` is the intercept)."""

    name: str
    coef: dict[str, float]

    def predict(self, features: Features) -> F64:
        """The forecast of every household of ``features`` (arrays of equal length)."""
        return linear_forecast(self.coef, features)


class ForecastRow(msgspec.Struct, frozen=True, kw_only=True):
    """A forecast candidate on the holdout (fitted on the pseudo-window before the cutoff)."""

    name: str
    selected: bool
    cv_mae: float  # cross-validated MAE on the pseudo-window (calibration only): what chose it
    coef: dict[str, float]
    spend_mae: Estimate
    minus_baseline: Estimate  # spend MAE minus the own-recent-spend baseline's, paired (< 0: better)


class ForecastReport(msgspec.Struct, frozen=True, kw_only=True):
    """The forecast candidates at one cutoff: the choice on calibration and every one on the holdout."""

    pseudo_cutoff: int  # day number of the calibration target's first day
    pseudo_households: int
    features: list[str]
    selected: str
    rows: list[ForecastRow]
    beats_baseline: bool  # the selected one's paired gap to the baseline lies entirely below 0


def spend_features(
    p: Purchases, end: int, full: RfmSummary, trips: Fitted, per_trip: F64, horizon_days: float, long: bool
) -> dict[str, F64]:
    """The features of ``full``'s customers (summarised before ``end`` with ``recent_days`` = horizon)
    from ``trips`` (a trip candidate fitted before ``end``) and their spend per trip."""
    s = trips.summary
    alive = btyd.p_alive(trips.model, s.x, s.t_x, s.T, covariate_values(s))
    expected = trips.trips(full, horizon_days)
    return {
        **history_features(p, end, full, horizon_days, long),
        "btyd": expected * per_trip,
        "trips": expected,
        "per_trip": per_trip,
        "p_alive": trips.aligned(alive, full, 0.0),
    }


def median_regression(x: F64, y: F64) -> F64:
    """Coefficients minimising sum |y - x b| (a linear programme, HiGHS); columns are scaled first."""
    n, k = x.shape
    scale = np.maximum(np.abs(x).max(axis=0), 1e-12)
    a_eq = sparse.hstack([sparse.csr_matrix(x / scale), sparse.eye(n), -sparse.eye(n)], format="csr")
    cost = np.concatenate([np.zeros(k), np.ones(2 * n)])
    bounds = [(None, None)] * k + [(0.0, None)] * (2 * n)
    result = linprog(cost, A_eq=a_eq, b_eq=y, bounds=bounds, method="highs")
    if result.status != 0:
        raise TrainingError(f"median regression: {result.message}")
    return np.asarray(result.x[:k] / scale, dtype=np.float64)


def _columns(name: str, features: Features) -> list[str]:
    if name == "l1_small":
        return [INTERCEPT, "own90", "btyd"]
    return [INTERCEPT, *(f for f in FEATURES if f in features)]


def fit_forecast(name: str, features: Features, y: F64) -> SpendForecaster:
    """The candidate ``name`` fitted to the target ``y`` of the households of ``features``."""
    if name in ("btyd", "own90"):
        return SpendForecaster(name, {name: 1.0})
    if name == "blend":
        own, model = features["own90"], features["btyd"]
        grid = np.linspace(0.0, 1.0, 101)
        loss = [np.abs(np.maximum(w * own + (1 - w) * model, 0.0) - y).mean() for w in grid]
        w = float(grid[int(np.argmin(loss))])
        return SpendForecaster(name, {"own90": w, "btyd": 1.0 - w})
    columns = _columns(name, features)
    x = np.column_stack([np.ones(y.size) if c == INTERCEPT else features[c] for c in columns])
    return SpendForecaster(name, dict(zip(columns, map(float, median_regression(x, y)), strict=True)))


def _subset(features: Features, rows: npt.NDArray[np.int64]) -> dict[str, F64]:
    return {k: v[rows] for k, v in features.items()}


def cross_validated_mae(name: str, features: Features, y: F64, seed: int, folds: int = FOLDS) -> float:
    """Mean absolute error of ``name`` on each household when fitted on the other folds."""
    fold = np.random.default_rng(seed).permutation(y.size) % folds
    error = np.empty(y.size)
    for k in range(folds):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        model = fit_forecast(name, _subset(features, train), y[train])
        error[test] = np.abs(model.predict(_subset(features, test)) - y[test])
    return float(error.mean())


def select_forecast(
    features: Features, y: F64, seed: int, candidates: tuple[str, ...] = FORECAST_CANDIDATES
) -> tuple[str, dict[str, float]]:
    """The candidate with the lowest cross-validated MAE (ties: the earlier, i.e. simpler, one)."""
    cv = {name: cross_validated_mae(name, features, y, seed) for name in candidates}
    return min(candidates, key=lambda n: (round(cv[n], 9), candidates.index(n))), cv


@dataclass(frozen=True, slots=True)
class PseudoWindow:
    """The calibration data of the forecasts: features before the pseudo-cutoff and the spend after it."""

    cutoff: int
    features: dict[str, F64]
    target: F64
    long: bool


def pseudo_window(
    p: Purchases,
    start: int,
    end: int,
    trip_candidate: tuple[btyd.TripKind, bool, int | None],
    spend_variant: SpendVariant,
    horizon_days: float,
) -> PseudoWindow:
    """Features at ``end - horizon_days`` (models refitted there) and the spend in the horizon after it."""
    cut = end - round(horizon_days)
    long = cut - start >= LONG_DAYS
    s = p.summary(cut, horizon_days, horizon_days)
    fitted = fit_candidates(p, cut, horizon_days, (trip_candidate,))[candidate_name(*trip_candidate)]
    _, per_trip = spend_per_trip(p, cut, s, (spend_variant,))[spend_variant.name]
    features = spend_features(p, cut, s, fitted, per_trip, horizon_days, long)
    return PseudoWindow(cut, features, s.holdout_spend, long)


def forecast_report(
    window: PseudoWindow,
    features: Features,
    actual: F64,
    baseline_error: F64,
    *,
    seed: int,
    rounds: int,
    candidates: tuple[str, ...] = FORECAST_CANDIDATES,
) -> tuple[ForecastReport, F64]:
    """Choose on ``window``, refit every candidate on all of it, score each on the holdout (``features``
    at the cutoff, ``actual`` spend after it) with its paired gap to ``baseline_error``; also returns the
    selected forecast."""
    selected, cv = select_forecast(window.features, window.target, seed, candidates)
    rows, chosen = [], np.zeros_like(actual)
    for name in candidates:
        model = fit_forecast(name, window.features, window.target)
        pred = model.predict(features)
        if name == selected:
            chosen = pred
        error = np.abs(pred - actual)
        rows.append(
            ForecastRow(
                name=name,
                selected=name == selected,
                cv_mae=cv[name],
                coef=model.coef,
                spend_mae=mean_estimate(error, seed, rounds),
                minus_baseline=mean_estimate(error - baseline_error, seed, rounds),
            )
        )
    gap = next(r for r in rows if r.selected).minus_baseline
    report = ForecastReport(
        pseudo_cutoff=window.cutoff,
        pseudo_households=int(window.target.size),
        features=sorted(window.features),
        selected=selected,
        rows=rows,
        beats_baseline=gap.high < 0,
    )
    return report, chosen


def forecast_at(
    p: Purchases,
    period: tuple[int, int, float],
    full: RfmSummary,
    trips: tuple[tuple[btyd.TripKind, bool, int | None], Fitted],
    spend: tuple[SpendVariant, F64],
    baseline_error: F64,
    *,
    seed: int,
    rounds: int,
) -> ForecastReport | None:
    """`forecast_report` for `evaluate_clv`: ``period`` = (first day, cutoff, horizon), ``full`` the
    households at the cutoff with their holdout, ``trips`` the selected trip candidate and its fit at the
    cutoff, ``spend`` the selected spend variant and its spend per trip there. None when the data before
    the pseudo-cutoff is shorter than the horizon (no full own-recent window to learn from) or the models
    cannot be fitted there (too few households): the trip and spend rows do not depend on it."""
    start, end, horizon_days = period
    if end - round(horizon_days) - start < horizon_days:
        return None
    try:
        window = pseudo_window(p, start, end, trips[0], spend[0], horizon_days)
        at_end = spend_features(p, end, full, trips[1], spend[1], horizon_days, window.long)
        return forecast_report(window, at_end, full.holdout_spend, baseline_error, seed=seed, rounds=rounds)[
            0
        ]
    except ModelsError:
        return None


def train_forecast(
    p: Purchases,
    start: int,
    end: int,
    trips: tuple[btyd.TripKind, bool, int | None],
    spend: SpendVariant,
    horizon_days: float = 90.0,
    seed: int = 0,
) -> dict[str, object] | None:
    """The forecast to ship with a model trained on the days before ``end``: chosen and fitted on the
    horizon before ``end`` as in `evaluate_clv`, as a card entry (its coefficients are what the edge
    would evaluate over the features of `spend_features` at its own cutoff); None without a full window,
    the reason when it cannot be fitted (the trip and spend models ship regardless)."""
    if end - round(horizon_days) - start < horizon_days:
        return None
    try:
        window = pseudo_window(p, start, end, trips, spend, horizon_days)
        selected, cv = select_forecast(window.features, window.target, seed)
        model = fit_forecast(selected, window.features, window.target)
    except ModelsError as exc:
        return {"skipped": f"spend forecast: {exc}"}
    return {
        "selected": selected,
        "coef": model.coef,
        "cv_mae": cv,
        "horizon_days": horizon_days,
        "pseudo_cutoff_day": window.cutoff,
        "households": int(window.target.size),
    }
