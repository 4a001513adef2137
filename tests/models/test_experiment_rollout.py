"""The rollout's decisions (`models.experiments.rollout.decide`), one rule at a time, on analyses of
constructed data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import numpy as np
import pytest

from models.experiments import (
    STEPS,
    Action,
    Direction,
    ExperimentData,
    ExperimentError,
    ExperimentResult,
    MetricData,
    RolloutDecision,
    RolloutState,
    RolloutStatus,
    analyse,
    apply,
    challenger_weights,
    decide,
    start,
)

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def result(
    hit_effect: float = 0.0,
    latency_effect: float = 0.0,
    n: int = 2000,
    assigned: tuple[int, int] | None = None,
    margin: float = 0.0,
    seed: int = 7,
) -> ExperimentResult:
    rng = np.random.default_rng(seed)
    hits = MetricData(
        "list_hit_rate",
        Direction.HIGHER_IS_BETTER,
        (rng.binomial(1, 0.3, n).astype(float), rng.binomial(1, 0.3 + hit_effect, n).astype(float)),
        margin=margin,
    )
    latency = MetricData(
        "scoring_ms", Direction.LOWER_IS_BETTER, (rng.gamma(4, 5, n), rng.gamma(4, 5, n) + latency_effect)
    )
    data = ExperimentData(
        "exp-r", ("champion", "challenger"), (0.5, 0.5), assigned or (n, n), 8.0, hits, (latency,)
    )
    return analyse(data)


def state(step: int = 0, days: float = 10.0, step_days: float = 3.0) -> RolloutState:
    now = T0 + timedelta(days=days)
    return RolloutState(
        experiment_id="exp-r", step=step, started_at=T0, step_started_at=now - timedelta(days=step_days)
    )


NOW = T0 + timedelta(days=10)


def test_collecting_holds() -> None:
    d = decide(state(), result(n=20), NOW)
    assert d.action is Action.HOLD
    assert "collecting" in d.reason
    assert d.challenger_share == STEPS[0]


def test_harm_rolls_back_at_once_even_on_the_first_day() -> None:
    early = state(days=1.0, step_days=1.0)
    d = decide(early, result(latency_effect=6.0), T0 + timedelta(days=1))
    assert d.action is Action.ROLLBACK
    assert "scoring_ms" in d.reason
    assert d.challenger_share == 0.0
    worse = decide(early, result(hit_effect=-0.12), T0 + timedelta(days=1))
    assert worse.action is Action.ROLLBACK
    assert "list_hit_rate" in worse.reason


def test_no_harm_waits_for_the_experiment_and_step_minimums() -> None:
    young = decide(state(days=3.0, step_days=3.0), result(), T0 + timedelta(days=3))
    assert young.action is Action.HOLD
    assert "experiment 3.0/7 days" in young.reason
    fresh_step = decide(state(step=1, days=10.0, step_days=0.5), result(), NOW)
    assert fresh_step.action is Action.HOLD


@pytest.mark.parametrize("step", [0, 1, 2])
def test_no_harm_advances_through_the_steps(step: int) -> None:
    d = decide(state(step=step), result(), NOW)
    assert d.action is Action.ADVANCE, d.reason
    assert (d.step, d.challenger_share) == (step + 1, STEPS[step + 1])
    after = apply(state(step=step), d)
    assert (after.step, after.step_started_at, after.status) == (step + 1, NOW, RolloutStatus.RUNNING)


def test_last_step_promotes_a_better_challenger_and_holds_an_equal_one() -> None:
    last = state(step=len(STEPS) - 1)
    promoted = decide(last, result(hit_effect=0.08), NOW)
    assert promoted.action is Action.PROMOTE, promoted.reason
    assert promoted.challenger_share == 1.0
    assert apply(last, promoted).status is RolloutStatus.PROMOTED
    equal = decide(last, result(), NOW)
    assert equal.action is Action.HOLD
    assert "not yet shown better" in equal.reason


def test_last_step_promotes_a_non_inferior_challenger_within_its_margin() -> None:
    last = state(step=len(STEPS) - 1)
    assert decide(last, result(n=20_000, margin=0.03), NOW).action is Action.PROMOTE
    assert decide(last, result(n=20_000, margin=0.0), NOW).action is Action.HOLD


def test_inconclusive_last_step_rolls_back_after_the_maximum() -> None:
    old = state(step=len(STEPS) - 1, days=43.0)
    d = decide(old, result(), T0 + timedelta(days=43))
    assert d.action is Action.ROLLBACK
    assert "inconclusive" in d.reason


def test_srm_rolls_back() -> None:
    d = decide(state(), result(assigned=(2300, 2000)), NOW)
    assert d.action is Action.ROLLBACK
    assert "sample ratio mismatch" in d.reason


def test_a_finished_rollout_only_holds() -> None:
    done = msgspec.structs.replace(state(), status=RolloutStatus.ROLLED_BACK)
    d = decide(done, result(hit_effect=0.2), NOW)
    assert (d.action, d.challenger_share) == (Action.HOLD, 0.0)
    assert apply(done, d) == done


def test_decisions_are_pure_and_encodable() -> None:
    r = result(hit_effect=0.08)
    first, second = decide(state(), r, NOW), decide(state(), r, NOW)
    assert first == second
    wire = msgspec.json.encode(first)
    assert msgspec.json.decode(wire, type=RolloutDecision) == first
    assert b'"action":"advance"' in wire


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ExperimentError, match="timezone"):
        decide(state(), result(), datetime(2026, 12, 10))
    with pytest.raises(ExperimentError, match="two-arm"):
        decide(msgspec.structs.replace(state(), experiment_id="other"), result(), NOW)
    with pytest.raises(ExperimentError, match="share"):
        challenger_weights(1.5)


def test_start_and_weights() -> None:
    s = start("exp-r", T0)
    assert (s.step, s.started_at, s.step_started_at, s.status) == (0, T0, T0, RolloutStatus.RUNNING)
    assert challenger_weights(0.25) == (0.75, 0.25)
