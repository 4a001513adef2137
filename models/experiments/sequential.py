"""Peeking-safe inference: asymptotic confidence sequences for a difference of means.

A fixed-horizon test is valid when it is looked at once. The rollout looks at a running test at every
step (and the daemon on every analysis), and each extra look at a 5% test is another chance for noise
to cross the line: with ten looks about a fifth of A/A tests come out "significant". A confidence
*sequence* is an interval that covers the true difference at every sample size simultaneously with
probability 1 - alpha, so any stopping rule, including "stop the moment it excludes 0", is valid.

This is the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas
("Time-uniform central limit theory and asymptotic confidence sequences", 2023, eq. 9), built on the
normal-mixture boundary of Howard, Ramdas, McAuliffe and Sekhon ("Time-uniform, nonparametric,
nonasymptotic confidence sequences", 2021), as GrowthBook's ``gbstats`` uses it for sequential tests:

    rho       = sqrt((-2 ln alpha + ln(-2 ln alpha + 1)) / N)             (eq. 161: tuning N)
    halfwidth = sqrt(s2 * 2 (n rho^2 + 1) / (n^2 rho^2) * ln(sqrt(n rho^2 + 1) / alpha))

where n = n_control + n_treatment and s2 = n * SE^2 is the per-observation variance of the difference
(SE^2 = var_c / n_c + var_t / n_t, Welch's). The tuning parameter N is the total number of households
at which the sequence should be tightest (GrowthBook's default 5000); plan it near the expected size.
The always-valid p-value is the inverse of the mixture martingale (eq. 155), so ``p < alpha`` exactly
when the interval excludes 0. It is the p-value *now*; the running minimum over looks is also valid.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import msgspec

from models.experiments.bucketing import ExperimentError

if TYPE_CHECKING:
    from models.experiments.analysis import Comparison

DEFAULT_TUNING = 5000.0  # GrowthBook's default "sequential_tuning_parameter"


class SequentialInterval(msgspec.Struct, frozen=True):
    """A (1 - alpha) confidence-sequence interval of treatment - control, valid at any stopping time.
    ``significant`` is ``p_value < alpha``, i.e. the interval excludes 0."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    n: int  # households in both arms
    alpha: float
    tuning: float
    enough_data: bool = True
    reason: str = ""


def _check(alpha: float, tuning: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ExperimentError(f"alpha: must be in (0, 1), got {alpha}")
    if tuning <= 0:
        raise ExperimentError(f"tuning: must be positive, got {tuning}")


def sequential_rho(alpha: float = 0.05, tuning: float = DEFAULT_TUNING) -> float:
    """The mixture's rho for a sequence tightest near ``tuning`` observations (Waudby-Smith eq. 161)."""
    _check(alpha, tuning)
    log_alpha = math.log(alpha)
    return math.sqrt((-2 * log_alpha + math.log(-2 * log_alpha + 1)) / tuning)


def sequential_halfwidth(
    variance: float, n: int, alpha: float = 0.05, tuning: float = DEFAULT_TUNING
) -> float:
    """Half-width of the two-sided sequence after ``n`` observations of per-observation ``variance``."""
    rho2 = sequential_rho(alpha, tuning) ** 2
    if n <= 0:
        return math.inf
    scale = n * rho2 + 1
    return math.sqrt(variance * 2 * scale / (n * n * rho2) * math.log(math.sqrt(scale) / alpha))


def sequential_p_value(
    difference: float, variance: float, n: int, alpha: float = 0.05, tuning: float = DEFAULT_TUNING
) -> float:
    """The always-valid p-value of ``difference = 0`` (1 / the normal-mixture e-value, capped at 1)."""
    rho2 = sequential_rho(alpha, tuning) ** 2
    if n <= 0 or variance <= 0:
        return 1.0
    scale = n * rho2 + 1
    log_e = rho2 * n * n * difference * difference / (2 * variance * scale) - 0.5 * math.log(scale)
    return 1.0 if log_e <= 0 else math.exp(-log_e)


def sequential_interval(
    difference: float,
    std_error: float,
    n_total: int,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
) -> SequentialInterval:
    """The sequence's interval from Welch's difference and standard error over ``n_total`` households."""
    _check(alpha, tuning)
    if n_total < 4 or std_error <= 0:
        reason = "not enough data: need two households per arm and a non-zero variance"
        return SequentialInterval(
            difference, -math.inf, math.inf, 1.0, False, n_total, alpha, tuning, False, reason
        )
    variance = std_error * std_error * n_total
    half = sequential_halfwidth(variance, n_total, alpha, tuning)
    p_value = sequential_p_value(difference, variance, n_total, alpha, tuning)
    low, high = difference - half, difference + half
    return SequentialInterval(difference, low, high, p_value, p_value < alpha, n_total, alpha, tuning)


def sequential_ci(
    comparison: Comparison, alpha: float | None = None, tuning: float = DEFAULT_TUNING
) -> SequentialInterval:
    """The confidence-sequence version of a Welch `Comparison` (same difference and standard error;
    ``alpha`` defaults to the comparison's). Undefined comparisons stay undefined."""
    level = comparison.alpha if alpha is None else alpha
    if not comparison.enough_data:
        _check(level, tuning)
        n = comparison.control.n + comparison.treatment.n
        return SequentialInterval(
            comparison.difference, -math.inf, math.inf, 1.0, False, n, level, tuning, False, comparison.reason
        )
    n_total = comparison.control.n + comparison.treatment.n
    return sequential_interval(comparison.difference, comparison.std_error, n_total, level, tuning)
