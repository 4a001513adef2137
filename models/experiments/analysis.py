"""Per-arm statistics of an A/B test, pure functions of arrays: the household is the unit, so every
array holds one value per household (its list hit rate, its Brier score, its mean scoring latency).

Welch's t-test for the difference of means, CUPED variance reduction, the sample-ratio-mismatch check,
Holm and Benjamini-Hochberg corrections, the minimum-sample gate, power and sample size (normal
approximation), the design's weighted score, and `analyse`, which puts them together into a verdict
for a whole experiment (primary metric, guardrails, SRM, gate). docs/experiments.md explains each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt
from scipy import stats

from models.experiments.bucketing import ExperimentError

FloatArray = npt.NDArray[np.float64]
SRM_THRESHOLD = 0.001  # GrowthBook's default: a p-value this small means the split is broken


class ArmSummary(msgspec.Struct, frozen=True):
    """One arm's metric: households, mean, sample variance (ddof=1) and the t-interval of the mean.
    With fewer than two households the variance is 0 and the interval unbounded."""

    n: int
    mean: float
    variance: float
    ci_low: float
    ci_high: float


class Comparison(msgspec.Struct, frozen=True):
    """Treatment minus control by Welch's t-test. ``enough_data`` is False (and ``reason`` says why)
    when the test is undefined: then ``p_value`` is 1 and the interval is unbounded, so nothing reads
    it as evidence."""

    control: ArmSummary
    treatment: ArmSummary
    difference: float
    std_error: float
    t_statistic: float
    df: float
    p_value: float
    ci_low: float
    ci_high: float
    relative_lift: float | None  # difference / control mean; None when the control mean is 0
    alpha: float
    enough_data: bool = True
    reason: str = ""


class SrmCheck(msgspec.Struct, frozen=True):
    """Chi-square goodness of fit of the arms' assignment counts to their weights."""

    observed: list[int]
    expected: list[float]
    chi2: float
    p_value: float
    mismatch: bool  # p_value < threshold: the assignment or its logging is broken, results are invalid
    threshold: float = SRM_THRESHOLD


class SampleGate(msgspec.Struct, frozen=True):
    reached: bool
    reason: str  # "" when reached


class WeightedScore(msgspec.Struct, frozen=True):
    """The design's weighted score of a model arm: a summary for people, reported beside the primary
    metric and never instead of it (it has no sampling distribution and no test)."""

    success: float
    confidence: float
    time: float
    cost: float
    total: float


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ExperimentError(f"alpha: must be in (0, 1), got {alpha}")


def as_values(values: npt.ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(array)):
        raise ExperimentError("values: every household's value must be a finite number")
    return array


def summary_from_stats(n: int, mean: float, variance: float, alpha: float = 0.05) -> ArmSummary:
    """An `ArmSummary` from sufficient statistics (what a store sends to central)."""
    _check_alpha(alpha)
    if n < 2:
        return ArmSummary(n, mean, 0.0, -math.inf, math.inf)
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * math.sqrt(variance / n)
    return ArmSummary(n, mean, variance, mean - half, mean + half)


def summarise(values: npt.ArrayLike, alpha: float = 0.05) -> ArmSummary:
    x = as_values(values)
    if x.size == 0:
        return ArmSummary(0, 0.0, 0.0, -math.inf, math.inf)
    variance = float(x.var(ddof=1)) if x.size >= 2 else 0.0
    return summary_from_stats(int(x.size), float(x.mean()), variance, alpha)


def _summary(arm: ArmSummary | npt.ArrayLike, alpha: float) -> ArmSummary:
    return arm if isinstance(arm, ArmSummary) else summarise(arm, alpha)


def welch(
    control: ArmSummary | npt.ArrayLike, treatment: ArmSummary | npt.ArrayLike, alpha: float = 0.05
) -> Comparison:
    """Welch's unequal-variance t-test of treatment - control: the Welch-Satterthwaite degrees of
    freedom, a two-sided p-value and the (1 - alpha) interval of the difference."""
    _check_alpha(alpha)
    c, t = _summary(control, alpha), _summary(treatment, alpha)
    difference = t.mean - c.mean if c.n and t.n else 0.0
    lift = difference / c.mean if c.n and c.mean != 0 else None
    vc, vt = (c.variance / c.n if c.n else 0.0), (t.variance / t.n if t.n else 0.0)
    se2 = vc + vt
    reason = ""
    if c.n < 2 or t.n < 2:
        reason = f"not enough data: {c.n} control and {t.n} treatment households (need 2 each)"
    elif se2 <= 0:
        reason = "not enough data: both arms have zero variance"
    if reason:
        return Comparison(
            c, t, difference, 0.0, 0.0, 0.0, 1.0, -math.inf, math.inf, lift, alpha, False, reason
        )
    se = math.sqrt(se2)
    df = se2**2 / (vc**2 / (c.n - 1) + vt**2 / (t.n - 1))
    t_stat = difference / se
    p_value = float(2 * stats.t.sf(abs(t_stat), df))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return Comparison(
        c, t, difference, se, t_stat, df, p_value, difference - half, difference + half, lift, alpha
    )


def cuped_theta(values: Sequence[npt.ArrayLike], covariates: Sequence[npt.ArrayLike]) -> float:
    """theta = cov(Y, X) / var(X), pooled over all arms (so it does not depend on the treatment)."""
    ys, xs = _paired(values, covariates)
    y, x = np.concatenate(ys), np.concatenate(xs)
    if x.size < 2:
        return 0.0
    var_x = float(x.var(ddof=1))
    if var_x <= 0:
        return 0.0
    return float(np.sum((x - x.mean()) * (y - y.mean())) / (x.size - 1)) / var_x


def cuped(values: Sequence[npt.ArrayLike], covariates: Sequence[npt.ArrayLike]) -> list[FloatArray]:
    """CUPED (Deng et al. 2013): each arm's ``Y - theta * (X - mean X)``, with theta from `cuped_theta`
    and mean X the pooled mean of the pre-experiment covariate. The adjusted arms keep their expected
    difference (X is independent of the assignment) and have variance ``var(Y) (1 - corr(X, Y)^2)``."""
    ys, xs = _paired(values, covariates)
    theta = cuped_theta(ys, xs)
    mean_x = float(np.concatenate(xs).mean()) if sum(x.size for x in xs) else 0.0
    return [y - theta * (x - mean_x) for y, x in zip(ys, xs, strict=True)]


def _paired(
    values: Sequence[npt.ArrayLike], covariates: Sequence[npt.ArrayLike]
) -> tuple[list[FloatArray], list[FloatArray]]:
    ys, xs = [as_values(v) for v in values], [as_values(x) for x in covariates]
    if len(ys) != len(xs) or any(y.shape != x.shape for y, x in zip(ys, xs, strict=False)):
        raise ExperimentError("covariates: need one covariate value per household in every arm")
    return ys, xs


def srm(
    observed_counts: Sequence[int], expected_weights: Sequence[float], threshold: float = SRM_THRESHOLD
) -> SrmCheck:
    """Sample ratio mismatch: a chi-square goodness-of-fit test of the assigned households per arm
    against the configured weights; flagged when p < ``threshold`` (0.001, as GrowthBook)."""
    observed = [int(c) for c in observed_counts]
    weights = np.asarray(expected_weights, dtype=np.float64)
    if len(observed) != weights.size or weights.size < 2:
        raise ExperimentError("expected_weights: need one weight per arm, at least two arms")
    if np.any(weights <= 0) or any(c < 0 for c in observed):
        raise ExperimentError("expected_weights: weights must be positive and counts non-negative")
    total = sum(observed)
    expected = (weights / weights.sum() * total).tolist()
    if total == 0:
        return SrmCheck(observed, expected, 0.0, 1.0, False, threshold)
    chi2 = float(sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True)))
    p_value = float(stats.chi2.sf(chi2, len(observed) - 1))
    return SrmCheck(observed, expected, chi2, p_value, p_value < threshold, threshold)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error rate); reject where adjusted < alpha."""
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (p.size - rank) * float(p[i])))
        adjusted[i] = running
    return [float(v) for v in adjusted]


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), for many secondary metrics."""
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.empty_like(p)
    running = 1.0
    order = np.argsort(p, kind="stable")
    for rank in range(p.size, 0, -1):
        i = order[rank - 1]
        running = min(running, float(p[i]) * p.size / rank)
        adjusted[i] = running
    return [float(v) for v in adjusted]


def min_sample_reached(
    n_per_arm: Sequence[int], days_running: float, min_n: int = 30, min_days: float = 7
) -> SampleGate:
    """The gate before any verdict: at least ``min_n`` households in every arm (the CLT behind the
    t-interval needs them) and ``min_days`` of running (a full weekly shopping cycle)."""
    short = [i for i, n in enumerate(n_per_arm) if n < min_n]
    reasons = []
    if short:
        counts = ", ".join(f"arm {i}: {n_per_arm[i]}" for i in short)
        reasons.append(f"fewer than {min_n} households ({counts})")
    if days_running < min_days:
        reasons.append(f"{days_running:.1f} of {min_days:g} days")
    return SampleGate(not reasons, "; ".join(reasons))


def required_sample_size(
    baseline_mean: float,
    baseline_sd: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    *,
    relative: bool = True,
) -> int:
    """Households per arm to detect a difference of ``mde`` with a two-sided test at ``alpha`` with
    probability ``power``: ``2 (z_{1-alpha/2} + z_power)^2 sd^2 / effect^2`` (normal approximation,
    equal arms). ``mde`` is relative to ``baseline_mean`` (0.05 = a 5% lift) unless ``relative=False``."""
    _check_alpha(alpha)
    effect = abs(mde * baseline_mean) if relative else abs(mde)
    if effect == 0 or not 0 < power < 1:
        raise ExperimentError(f"mde/power: need a non-zero effect and power in (0, 1), got {mde}, {power}")
    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    return math.ceil(2 * (z * baseline_sd / effect) ** 2)


def predicted_power(n_per_arm: float, sd: float, effect: float, alpha: float = 0.05) -> float:
    """The probability that a two-sided test at ``alpha`` with ``n_per_arm`` households per arm and a
    per-household standard deviation ``sd`` declares a true difference ``effect`` significant (either
    direction; normal approximation)."""
    _check_alpha(alpha)
    if n_per_arm <= 0 or sd <= 0:
        return alpha if effect == 0 else 0.0
    shift = abs(effect) / (sd * math.sqrt(2 / n_per_arm))
    z = float(stats.norm.ppf(1 - alpha / 2))
    return float(stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z))


SCORE_WEIGHTS = (0.4, 0.3, 0.2, 0.1)  # success rate, confidence, processing time, cost (the design)


def weighted_score(
    success_rate: float,
    confidence: float,
    processing_time_ms: float,
    cost: float,
    *,
    reference_ms: float = 100.0,
    reference_cost: float = 1.0,
    weights: tuple[float, float, float, float] = SCORE_WEIGHTS,
) -> WeightedScore:
    """The design's weighted score: 40% success rate, 30% confidence, 20% processing time, 10% cost,
    each component in [0, 1]. Success rate and confidence are clipped to [0, 1]; time scores
    ``1 / (1 + ms / reference_ms)`` (1 when instant, 0.5 at the reference) and cost likewise
    ``1 / (1 + cost / reference_cost)``. Not a test statistic: see `WeightedScore`."""
    if processing_time_ms < 0 or cost < 0 or reference_ms <= 0 or reference_cost <= 0:
        raise ExperimentError("processing_time_ms/cost: must be non-negative (references positive)")
    parts = (
        min(max(success_rate, 0.0), 1.0),
        min(max(confidence, 0.0), 1.0),
        1 / (1 + processing_time_ms / reference_ms),
        1 / (1 + cost / reference_cost),
    )
    total = sum(w * p for w, p in zip(weights, parts, strict=True)) / sum(weights)
    return WeightedScore(*parts, total=total)
