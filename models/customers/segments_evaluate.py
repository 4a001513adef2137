"""Held-out evaluation of the household segments (`storeedge models evaluate --task segments`), and the
per-segment breakdown the CLV and churn reports carry.

Protocol: features from the lines before the cutoff (default: the data's last 90 days are held out;
CDNOW: 1997-10-01, its published calibration end), the segments fitted on them as they would be shipped
(k chosen by `fit_segments`' own rule). Then, in the same run:

- stability: the households are split into two random halves ``rounds`` times (seeds other than the ones
  k was chosen with); each half gets its own fit at the chosen k (scaling included), both models assign
  every household, and the adjusted Rand index of the two assignments is reported. Goal: >= 0.8.
- spend: the share of the variance of each household's spend in the ``horizon_days`` after the cutoff
  that the segment explains (eta squared, between-segment over total sum of squares), on spend and on
  log(1 + spend), against chance: the same with the segment labels permuted ``permutations`` times.
"""

from __future__ import annotations

import time
from datetime import date

import msgspec
import numpy as np
import numpy.typing as npt

from models.customers.cdnow import CALIBRATION_END, CDNOW
from models.customers.segments import (
    SECONDS_PER_DAY,
    STABILITY_GOAL,
    BasketLines,
    SegmentModel,
    assign,
    fit_segments,
    load_basket_lines,
    missing_features,
    segment_features,
)
from models.customers.segments_breakdown import SegmentedHouseholds
from models.customers.segments_kmeans import adjusted_rand_index
from models.errors import DatasetError
from models.history import PurchaseHistory, day_date, epoch_day

F64 = npt.NDArray[np.float64]


class VarianceExplained(msgspec.Struct, frozen=True, kw_only=True):
    """Eta squared of a spend measure by segment, and the same under permuted labels."""

    eta_squared: float
    chance_mean: float
    chance_p95: float
    p_value: float  # (1 + permutations at least as high) / (1 + permutations)


class SegmentRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    description: str
    households: int
    share: float
    next_spend_mean: float  # mean spend in the horizon after the cutoff
    typical: dict[str, float]


class SegmentReport(msgspec.Struct, frozen=True, kw_only=True):
    task: str = "segments"
    source: str
    cutoff: str  # ISO date: features before it, spend in the horizon from it
    horizon_days: float
    households: int
    missing_features: list[str]  # features the source cannot inform (left out of the fit)
    unused_features: list[str]  # left out of the fit: the missing ones and any constant before the cutoff
    k: int
    k_rule: str
    stability_by_k: dict[str, float]  # the split-half ARI k was chosen with
    stability_rounds: list[float]  # fresh split-half ARIs at the chosen k
    stability: float  # their median
    seed: int
    permutations: int
    spend: VarianceExplained
    log_spend: VarianceExplained
    segments: list[SegmentRow]
    goals: dict[str, bool]
    seconds: float


def cutoff_day(lines: BasketLines, source: str, cutoff: date | None, horizon_days: float) -> int:
    """The first held-out day: ``cutoff``, CDNOW's 1997-10-01, or the data's last ``horizon_days``."""
    if cutoff is not None:
        end = epoch_day(cutoff)
    elif source == CDNOW:
        end = epoch_day(CALIBRATION_END)
    else:
        end = int(np.floor(lines.ts.max() / SECONDS_PER_DAY)) + 1 - int(horizon_days)
    first = int(np.floor(lines.ts.min() / SECONDS_PER_DAY))
    if not first + 28 <= end:
        raise DatasetError(
            f"{source}: cutoff {day_date(end)} leaves less than four weeks of history to segment"
        )
    return end


def segment_households(
    lines: BasketLines, end_day: int, *, source: str, seed: int = 0, k: int | None = None
) -> SegmentedHouseholds:
    """Fit the segments on the lines before ``end_day`` and assign those households."""
    end = float(end_day) * SECONDS_PER_DAY
    ids, x = segment_features(lines, end)
    model = fit_segments(
        ids, x, k=k, seed=seed, fitted_on=source, missing=missing_features(lines.lacks), end=end
    )
    return SegmentedHouseholds(ids, assign(model, x), model, x)


def segment_source(
    source: str, history: PurchaseHistory | None, end_day: int, seed: int
) -> SegmentedHouseholds:
    """The segments of a source's households fitted on its lines before ``end_day``."""
    return segment_households(load_basket_lines(source, history), end_day, source=source, seed=seed)


def eta_squared(y: F64, labels: npt.NDArray[np.int64]) -> F64:
    """Between-group over total sum of squares, per row of ``labels`` (one labelling per row)."""
    lab = np.atleast_2d(labels)
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0:
        return np.zeros(lab.shape[0])
    k = int(lab.max()) + 1
    out = np.empty(lab.shape[0])
    for r, row in enumerate(lab):
        counts = np.bincount(row, minlength=k)
        sums = np.bincount(row, weights=y, minlength=k)
        nz = counts > 0
        out[r] = float((sums[nz] ** 2 / counts[nz]).sum() - y.sum() ** 2 / y.size) / total
    return out


def _explained(
    y: F64, labels: npt.NDArray[np.int64], rng: np.random.Generator, rounds: int
) -> VarianceExplained:
    observed = float(eta_squared(y, labels)[0])
    chance = eta_squared(y, np.stack([rng.permutation(labels) for _ in range(rounds)]))
    return VarianceExplained(
        eta_squared=round(observed, 4),
        chance_mean=round(float(chance.mean()), 5),
        chance_p95=round(float(np.percentile(chance, 95)), 5),
        p_value=round(float((1 + (chance >= observed).sum()) / (1 + rounds)), 5),
    )


def stability_rounds(segmented: SegmentedHouseholds, seed: int, rounds: int) -> list[float]:
    """Adjusted Rand index of two half-fits' assignments of every household, per random halving."""
    x, ids, k = segmented.features, segmented.ids, segmented.model.card.k
    out = []
    for r in range(rounds):
        rng = np.random.default_rng(10_000 + 97 * seed + r)  # other seeds than the k choice used
        order = rng.permutation(ids.size)
        halves = order[: ids.size // 2], order[ids.size // 2 :]
        fits: list[SegmentModel] = [
            fit_segments(ids[h], x[h], k=k, seed=seed + r + i, measure_stability=False)
            for i, h in enumerate(halves)
        ]
        out.append(round(adjusted_rand_index(assign(fits[0], x), assign(fits[1], x)), 4))
    return out


def evaluate_segments(
    source: str,
    *,
    history: PurchaseHistory | None = None,
    cutoff: date | None = None,
    horizon_days: float = 90.0,
    seed: int = 0,
    rounds: int = 5,
    permutations: int = 1000,
) -> SegmentReport:
    """Fit the segments before the cutoff; their stability and the next ``horizon_days``' spend they explain."""
    began = time.perf_counter()
    lines = load_basket_lines(source, history)
    end_day = cutoff_day(lines, source, cutoff, horizon_days)
    segmented = segment_households(lines, end_day, source=source, seed=seed)
    model, labels = segmented.model, segmented.labels
    start, stop = end_day * SECONDS_PER_DAY, (end_day + horizon_days) * SECONDS_PER_DAY
    after = (lines.ts >= start) & (lines.ts < stop)
    y = segmented.align(lines.household[after], lines.spend[after])
    stability = stability_rounds(segmented, seed, rounds)
    rng = np.random.default_rng(seed)
    spend, log_spend = (
        _explained(y, labels, rng, permutations),
        _explained(np.log1p(y), labels, rng, permutations),
    )
    n = labels.size
    rows = [
        SegmentRow(
            id=s.id,
            name=s.name,
            description=s.description,
            households=int((labels == i).sum()),
            share=round(float((labels == i).mean()), 4),
            next_spend_mean=round(float(y[labels == i].mean()), 2) if (labels == i).any() else 0.0,
            typical={f: round(v, 4) for f, v in s.typical.items()},
        )
        for i, s in enumerate(model.segments)
    ]
    median = float(np.median(stability))
    return SegmentReport(
        source=source,
        cutoff=day_date(end_day).isoformat(),
        horizon_days=horizon_days,
        households=n,
        missing_features=model.card.missing_features,
        unused_features=model.card.unused_features,
        k=model.card.k,
        k_rule=model.card.k_rule,
        stability_by_k=model.card.stability_by_k,
        stability_rounds=stability,
        stability=round(median, 4),
        seed=seed,
        permutations=permutations,
        spend=spend,
        log_spend=log_spend,
        segments=rows,
        goals={
            f"stability_ge_{STABILITY_GOAL}": median >= STABILITY_GOAL,
            "spend_explained_beyond_chance": spend.eta_squared > spend.chance_p95
            and log_spend.eta_squared > log_spend.chance_p95,
        },
        seconds=round(time.perf_counter() - began, 2),
    )
