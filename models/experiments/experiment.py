"""A whole experiment: every challenger compared with the control on every metric (primary, guardrails,
secondary), with CUPED where covariates are given, Holm over the family, the SRM check and the sample
gate, and a verdict per challenger and overall. Pure functions of the data, used by the store and central.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

import msgspec

from models.experiments.analysis import (
    Comparison,
    FloatArray,
    SampleGate,
    SrmCheck,
    as_values,
    cuped,
    cuped_theta,
    holm,
    min_sample_reached,
    srm,
    welch,
)
from models.experiments.bucketing import ExperimentError
from models.experiments.sequential import DEFAULT_TUNING, SequentialInterval, sequential_ci

# --- a whole experiment -------------------------------------------------------------------------


class Direction(enum.Enum):
    HIGHER_IS_BETTER = "higher"  # list hit rate, thumbs-up share
    LOWER_IS_BETTER = "lower"  # Brier score, log loss, MAE in days, scoring latency, error share


class Verdict(enum.Enum):
    COLLECTING = "collecting"  # the minimum-sample gate is not reached
    NO_DIFFERENCE = "no_difference"
    CHALLENGER_BETTER = "challenger_better"  # primary significantly better, no metric worse
    CHALLENGER_WORSE = "challenger_worse"  # primary or a guardrail significantly worse
    SRM = "srm"  # the split does not match the weights: the data are invalid


Role = Literal["primary", "secondary", "guardrail"]
Effect = Literal["better", "worse", "none"]


@dataclass(frozen=True, slots=True, eq=False)
class MetricData:
    """One metric's per-household values in every arm (control first), and optionally each household's
    pre-experiment value of the same metric for CUPED. ``margin`` (metric units, >= 0) is how much worse
    the challenger may be and still be promoted (non-inferiority; used by the rollout)."""

    name: str
    direction: Direction
    values: tuple[FloatArray, ...]
    covariates: tuple[FloatArray, ...] | None = None
    margin: float = 0.0


@dataclass(frozen=True, slots=True, eq=False)
class ExperimentData:
    """Everything `analyse` needs. ``assigned`` counts the households the assignment put in each arm
    (for the SRM check); the metric arrays hold the households with an outcome."""

    experiment_id: str
    arms: tuple[str, ...]
    weights: tuple[float, ...]
    assigned: tuple[int, ...]
    days_running: float
    primary: MetricData
    guardrails: tuple[MetricData, ...] = ()
    secondary: tuple[MetricData, ...] = ()
    alpha: float = 0.05
    min_n: int = 30
    min_days: float = 7
    sequential: bool = True  # decide on confidence sequences (peeking-safe); False: fixed-horizon Welch
    tuning: float = DEFAULT_TUNING


class MetricComparison(msgspec.Struct, frozen=True):
    metric: str
    role: Role
    direction: Direction
    arm: str  # the challenger compared with the control
    cuped_theta: float | None  # None: no covariate, unadjusted
    welch: Comparison
    sequential: SequentialInterval
    p_adjusted: float  # Holm over every (metric, challenger) of the p-value the decision uses
    effect: Effect
    margin: float = 0.0  # the metric's non-inferiority margin (`MetricData.margin`)


class ArmVerdict(msgspec.Struct, frozen=True):
    arm: str
    verdict: Verdict
    reason: str


class ExperimentResult(msgspec.Struct, frozen=True):
    experiment_id: str
    arms: list[str]
    assigned: list[int]
    analysed: list[int]  # households with a primary-metric value, per arm
    days_running: float
    srm: SrmCheck
    gate: SampleGate
    sequential: bool
    alpha: float
    metrics: list[MetricComparison]
    challengers: list[ArmVerdict]
    verdict: Verdict  # the most severe of the challengers': srm, collecting, worse, better, no_difference
    reason: str


def _compare(
    metric: MetricData, arm: int, data: ExperimentData
) -> tuple[Comparison, SequentialInterval, float | None]:
    values: list[FloatArray] = [as_values(v) for v in metric.values]
    theta = None
    if metric.covariates is not None:
        theta = cuped_theta(values, metric.covariates)
        values = cuped(values, metric.covariates)
    comparison = welch(values[0], values[arm], data.alpha)
    return comparison, sequential_ci(comparison, data.alpha, data.tuning), theta


def analyse(data: ExperimentData) -> ExperimentResult:
    """Compare every challenger with the control on every metric and reach a verdict.

    The p-value a decision uses (the confidence sequence's when ``data.sequential``, else Welch's) is
    Holm-adjusted over the family of every (metric, challenger). The primary and secondary metrics are
    "better"/"worse" when the adjusted p-value is below alpha; a guardrail is "worse" on its *unadjusted*
    p-value, because for harm a false alarm (keeping the champion) is cheap and a miss is not."""
    k = len(data.arms)
    if k < 2 or not len(data.weights) == len(data.assigned) == k:
        raise ExperimentError("arms: need two or more arms, with one weight and one count each")
    roles: list[tuple[Role, MetricData]] = [("primary", data.primary)]
    roles += [("guardrail", m) for m in data.guardrails] + [("secondary", m) for m in data.secondary]
    for _, metric in roles:
        if len(metric.values) != k:
            raise ExperimentError(f"{metric.name}: need one array of values per arm ({k})")
    computed = [(role, m, arm, *_compare(m, arm, data)) for role, m in roles for arm in range(1, k)]
    raw = [s.p_value if data.sequential else w.p_value for *_, w, s, _ in computed]
    adjusted = holm(raw)
    metrics: list[MetricComparison] = []
    for (role, m, arm, w, s, theta), p_raw, p_adj in zip(computed, raw, adjusted, strict=True):
        sign = 1.0 if m.direction is Direction.HIGHER_IS_BETTER else -1.0
        significant = (p_raw if role == "guardrail" else p_adj) < data.alpha
        effect: Effect = "none" if not significant else ("better" if sign * w.difference > 0 else "worse")
        metrics.append(
            MetricComparison(m.name, role, m.direction, data.arms[arm], theta, w, s, p_adj, effect, m.margin)
        )
    srm_check = srm(data.assigned, data.weights)
    analysed = [len(v) for v in data.primary.values]
    gate = min_sample_reached(analysed, data.days_running, data.min_n, data.min_days)
    verdicts = [_arm_verdict(data.arms[arm], metrics, srm_check, gate) for arm in range(1, k)]
    order = [Verdict.SRM, Verdict.COLLECTING, Verdict.CHALLENGER_WORSE, Verdict.CHALLENGER_BETTER]
    worst = min(verdicts, key=lambda v: order.index(v.verdict) if v.verdict in order else len(order))
    return ExperimentResult(
        data.experiment_id, list(data.arms), list(data.assigned), analysed, data.days_running, srm_check,
        gate, data.sequential, data.alpha, metrics, verdicts, worst.verdict, worst.reason,
    )  # fmt: skip


def _arm_verdict(
    arm: str, metrics: list[MetricComparison], srm_check: SrmCheck, gate: SampleGate
) -> ArmVerdict:
    if srm_check.mismatch:
        return ArmVerdict(
            arm, Verdict.SRM, f"sample ratio mismatch (p = {srm_check.p_value:.2g}): data invalid"
        )
    if not gate.reached:
        return ArmVerdict(arm, Verdict.COLLECTING, f"collecting: {gate.reason}")
    mine = [m for m in metrics if m.arm == arm and m.role != "secondary"]
    worse = [m.metric for m in mine if m.effect == "worse"]
    if worse:
        return ArmVerdict(arm, Verdict.CHALLENGER_WORSE, f"{arm} significantly worse on {', '.join(worse)}")
    primary = next(m for m in mine if m.role == "primary")
    if primary.effect == "better":
        return ArmVerdict(arm, Verdict.CHALLENGER_BETTER, f"{arm} significantly better on {primary.metric}")
    return ArmVerdict(arm, Verdict.NO_DIFFERENCE, f"no significant difference on {primary.metric}")
