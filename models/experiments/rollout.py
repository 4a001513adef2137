"""The gradual rollout of a challenger, as a pure decision: given where the rollout is, the latest
analysis and the time, say what to do and why. The daemon applies the decision (new weights for the
assignment) and records it as an outbox event; nothing here reads a clock or a file.

Steps of challenger traffic: 10% -> 25% -> 50% -> 90% -> promoted (100%). At every look:

1. A finished rollout (promoted or rolled back) only holds.
2. A sample ratio mismatch rolls back: the assignment or its logging is broken, so nothing measured
   can be trusted, and the champion is the safe state while people look.
3. Fewer than ``min_n_per_arm`` households *in this step* in either arm: hold (the interval is a
   large-sample one). The caller analyses each step's own households, because the split changes
   between steps.
4. Harm rolls back at once, whatever the step and however few days have passed: the challenger is
   significantly worse on the primary metric or on any guardrail (scoring latency, errors), judged by
   the confidence sequence (valid at every look) and not corrected for multiplicity (a false alarm
   only keeps the champion).
5. Until the *experiment* has run ``min_experiment_days`` (a weekly shopping cycle) and the *step*
   ``min_step_days``: hold.
6. Before the last step: advance. At the last step (90%): promote when the primary metric is better
   than the control by more than ``-margin`` over the whole confidence sequence (non-inferiority;
   with the default margin 0 that is "significantly better"), else hold; after
   ``max_experiment_days`` an inconclusive challenger is rolled back (the champion stays).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

import msgspec

from models.experiments.bucketing import ExperimentError
from models.experiments.experiment import Direction, ExperimentResult, MetricComparison, Verdict

STEPS: tuple[float, ...] = (0.10, 0.25, 0.50, 0.90)
_DAY = timedelta(days=1)


class Action(enum.Enum):
    HOLD = "hold"
    ADVANCE = "advance"
    ROLLBACK = "rollback"
    PROMOTE = "promote"


class RolloutStatus(enum.Enum):
    RUNNING = "running"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"


class RolloutPolicy(msgspec.Struct, frozen=True, kw_only=True):
    steps: tuple[float, ...] = STEPS
    min_n_per_arm: int = 30  # per arm, per step
    min_experiment_days: float = 7.0  # the experiment as a whole
    min_step_days: float = 1.0  # each step sees at least one day (weekday/weekend mix comes from the 7)
    max_experiment_days: float = 42.0  # then an inconclusive last step rolls back


class RolloutState(msgspec.Struct, frozen=True, kw_only=True):
    experiment_id: str
    step: int  # index into the policy's steps
    started_at: datetime  # the experiment's start
    step_started_at: datetime
    status: RolloutStatus = RolloutStatus.RUNNING


class RolloutDecision(msgspec.Struct, frozen=True, kw_only=True):
    """What to do, for the daemon to apply and to record as an outbox event."""

    experiment_id: str
    action: Action
    step: int  # the step after the decision
    challenger_share: float  # after the decision: 0 after a rollback, 1 after a promotion
    verdict: Verdict
    reason: str
    decided_at: datetime


def challenger_weights(share: float) -> tuple[float, float]:
    """Assignment weights (control, challenger) for a challenger share. With GrowthBook's bucket ranges
    the challenger's range is ``[1 - share, 1)``, so raising the share only moves households from the
    control to the challenger, never back."""
    if not 0.0 <= share <= 1.0:
        raise ExperimentError(f"share: must be in [0, 1], got {share}")
    return (1.0 - share, share)


def start(experiment_id: str, now: datetime) -> RolloutState:
    _aware(now)
    return RolloutState(experiment_id=experiment_id, step=0, started_at=now, step_started_at=now)


def apply(state: RolloutState, decision: RolloutDecision) -> RolloutState:
    """The state after ``decision`` (pure, so the daemon and a replay of its outbox agree)."""
    if decision.action is Action.ADVANCE:
        return msgspec.structs.replace(state, step=decision.step, step_started_at=decision.decided_at)
    if decision.action is Action.PROMOTE:
        return msgspec.structs.replace(state, status=RolloutStatus.PROMOTED)
    if decision.action is Action.ROLLBACK:
        return msgspec.structs.replace(state, status=RolloutStatus.ROLLED_BACK)
    return state


def _aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ExperimentError("now: must be timezone-aware (decisions are recorded with their time)")


def _describe(m: MetricComparison) -> str:
    s = m.sequential
    return f"{m.metric} {m.welch.difference:+.4g} (sequence [{s.ci_low:.4g}, {s.ci_high:.4g}])"


def _harmed(m: MetricComparison) -> bool:
    s = m.sequential
    worse = s.ci_low > 0 if m.direction is Direction.LOWER_IS_BETTER else s.ci_high < 0
    return s.enough_data and worse


def harmed_guardrails(result: ExperimentResult) -> list[str]:
    """The guardrails (scoring latency, errors) on which a challenger is significantly worse by its
    confidence sequence, described for people: what a store acts on by itself when central decides the
    rollout (the primary metric needs every store's households)."""
    return [_describe(m) for m in result.metrics if m.role == "guardrail" and _harmed(m)]


def _improvement_low(m: MetricComparison) -> float:
    """The lower end of the confidence sequence of the improvement (the difference, signed so that a
    positive value is better)."""
    s = m.sequential
    return s.ci_low if m.direction is Direction.HIGHER_IS_BETTER else -s.ci_high


def decide(
    state: RolloutState,
    result: ExperimentResult,
    now: datetime,
    policy: RolloutPolicy | None = None,
) -> RolloutDecision:
    """The next rollout decision (module docstring) from ``result``, an `analyse` of this step's
    households (two arms: control, challenger). The primary metric's ``margin`` is its non-inferiority
    margin. Uses the confidence sequences, whatever ``result.sequential`` says."""
    _aware(now)
    policy = policy or RolloutPolicy()
    if result.experiment_id != state.experiment_id or len(result.arms) != 2:
        raise ExperimentError(f"result: expected a two-arm analysis of {state.experiment_id}")
    if not 0 <= state.step < len(policy.steps):
        raise ExperimentError(f"state.step: {state.step} is not a step of {policy.steps}")
    share = policy.steps[state.step]

    def decision(
        action: Action, reason: str, step: int = state.step, new_share: float = share
    ) -> RolloutDecision:
        return RolloutDecision(
            experiment_id=state.experiment_id, action=action, step=step, challenger_share=new_share,
            verdict=result.verdict, reason=reason, decided_at=now,
        )  # fmt: skip

    if state.status is not RolloutStatus.RUNNING:
        done = 1.0 if state.status is RolloutStatus.PROMOTED else 0.0
        return decision(Action.HOLD, f"rollout already {state.status.value}", new_share=done)
    if result.srm.mismatch:
        reason = f"sample ratio mismatch (p = {result.srm.p_value:.2g}, counts {result.srm.observed})"
        return decision(Action.ROLLBACK, reason + ": assignment is broken", new_share=0.0)
    if min(result.analysed) < policy.min_n_per_arm:
        return decision(Action.HOLD, f"collecting: {result.analysed} households per arm in this step")
    judged = [m for m in result.metrics if m.role != "secondary"]
    harmed = [m for m in judged if _harmed(m)]
    if harmed:
        worse = "; ".join(_describe(m) for m in harmed)
        return decision(Action.ROLLBACK, f"challenger significantly worse: {worse}", new_share=0.0)
    days = (now - state.started_at) / _DAY
    step_days = (now - state.step_started_at) / _DAY
    if days < policy.min_experiment_days or step_days < policy.min_step_days:
        return decision(
            Action.HOLD, f"no harm so far; waiting: experiment {days:.1f}/{policy.min_experiment_days:g} "
            f"days, step {step_days:.1f}/{policy.min_step_days:g} days",
        )  # fmt: skip
    if state.step + 1 < len(policy.steps):
        nxt = policy.steps[state.step + 1]
        return decision(
            Action.ADVANCE, f"no harm at {share:.0%}; advancing to {nxt:.0%}", state.step + 1, nxt
        )
    primary = next(m for m in judged if m.role == "primary")
    if _improvement_low(primary) > -primary.margin:
        reason = f"primary better than -{primary.margin:g} throughout its sequence: {_describe(primary)}"
        return decision(Action.PROMOTE, reason, new_share=1.0)
    if days >= policy.max_experiment_days:
        reason = f"inconclusive after {days:.0f} days: {_describe(primary)}; the champion stays"
        return decision(Action.ROLLBACK, reason, new_share=0.0)
    return decision(Action.HOLD, f"at {share:.0%}, no harm, not yet shown better: {_describe(primary)}")
