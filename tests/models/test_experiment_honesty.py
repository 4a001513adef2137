"""Are the statistics honest? Simulated experiments with a known truth:

- A/A (no difference): the fixed-horizon Welch test declares about alpha of them significant; peeking
  ten times with Welch does not stay near alpha, the confidence sequence does; SRM fires on a broken
  split and at its nominal rate on a fair one.
- A/B (a known difference): the detection rate matches `predicted_power`; the rollout, fed data in
  stages, rolls back a clearly worse challenger and promotes a clearly better one; CUPED narrows the
  interval when a correlated covariate exists.

Every rate is printed in the assertion message (and with ``-s``); docs/experiments.md quotes a run.
Default sizes keep the file fast; ``@pytest.mark.slow`` repeats them with 5,000 experiments.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from models.experiments import (
    STEPS,
    Action,
    Direction,
    ExperimentData,
    MetricData,
    RolloutDecision,
    RolloutStatus,
    analyse,
    apply,
    assign,
    challenger_weights,
    decide,
    predicted_power,
    sequential_ci,
    srm,
    start,
    summary_from_stats,
    welch,
)

Array = npt.NDArray[np.float64]
Draw = Callable[[np.random.Generator, tuple[int, int]], Array]
ALPHA = 0.05


def hit_rate(p: float) -> Draw:
    """A household's list hit rate over its week: did the list contain what it bought (Bernoulli)."""
    return lambda rng, shape: rng.binomial(1, p, shape).astype(np.float64)


def basket_value(scale: float = 1.0) -> Draw:
    """A skewed continuous metric: a household's spend, lognormal (mean ~ 33, long right tail)."""
    return lambda rng, shape: scale * rng.lognormal(3.0, 1.0, shape)


def comparisons(control: Array, treatment: Array) -> list[tuple[float, float, bool]]:
    """Per simulated experiment (rows): Welch's p-value, the sequence's p-value, and whether it is
    significant; through the library's own functions on each row's sufficient statistics."""
    n_c, n_t = control.shape[1], treatment.shape[1]
    mc, vc = control.mean(axis=1), control.var(axis=1, ddof=1)
    mt, vt = treatment.mean(axis=1), treatment.var(axis=1, ddof=1)
    out = []
    for i in range(control.shape[0]):
        c = welch(summary_from_stats(n_c, mc[i], vc[i]), summary_from_stats(n_t, mt[i], vt[i]), ALPHA)
        s = sequential_ci(c, tuning=TUNING)
        out.append((c.p_value, s.p_value, s.significant))
    return out


TUNING = 4000.0  # planned households in both arms at the last look


@pytest.mark.parametrize(
    ("sims", "name", "draw"),
    [
        (2000, "hit rate", hit_rate(0.3)),
        (2000, "basket value", basket_value()),
        pytest.param(5000, "hit rate", hit_rate(0.3), marks=pytest.mark.slow),
        pytest.param(5000, "basket value", basket_value(), marks=pytest.mark.slow),
    ],
)
def test_aa_fixed_horizon_false_positive_rate(sims: int, name: str, draw: Draw) -> None:
    rng = np.random.default_rng(1401)
    results = comparisons(draw(rng, (sims, 1000)), draw(rng, (sims, 1000)))
    rate = float(np.mean([p < ALPHA for p, _, _ in results]))
    print(f"A/A fixed-horizon Welch, {name}: {rate:.4f} significant of {sims} experiments")
    assert 0.03 <= rate <= 0.07, f"A/A Welch false-positive rate {rate:.4f} over {sims} ({name})"


@pytest.mark.parametrize(
    ("sims", "name", "draw"),
    [
        (500, "hit rate", hit_rate(0.3)),
        (500, "basket value", basket_value()),
        pytest.param(5000, "hit rate", hit_rate(0.3), marks=pytest.mark.slow),
        pytest.param(5000, "basket value", basket_value(), marks=pytest.mark.slow),
    ],
)
def test_aa_peeking_needs_the_sequential_method(sims: int, name: str, draw: Draw) -> None:
    """Ten looks (every 200 households per arm up to 2,000): stop at the first significant look."""
    rng = np.random.default_rng(1402)
    looks = range(200, 2001, 200)
    naive = np.zeros(sims, dtype=bool)
    sequential = np.zeros(sims, dtype=bool)
    for chunk in range(0, sims, 500):  # bounded memory for the slow run
        size = min(500, sims - chunk)
        control, treatment = draw(rng, (size, 2000)), draw(rng, (size, 2000))
        for n in looks:
            found = comparisons(control[:, :n], treatment[:, :n])
            naive[chunk : chunk + size] |= [p < ALPHA for p, _, _ in found]
            sequential[chunk : chunk + size] |= [sig for _, _, sig in found]
    naive_rate, seq_rate = float(naive.mean()), float(sequential.mean())
    report = (
        f"{name}, {sims} A/A experiments, 10 looks: naive Welch {naive_rate:.4f}, sequence {seq_rate:.4f}"
    )
    print(report)
    assert seq_rate <= 0.07, report
    assert naive_rate > 0.07, report


@pytest.mark.parametrize("sims", [5_000, pytest.param(50_000, marks=pytest.mark.slow)])
def test_srm_fires_on_a_skewed_split_and_rarely_on_a_fair_one(sims: int) -> None:
    rng = np.random.default_rng(1403)
    fair = rng.binomial(20_000, 0.5, sims)
    skewed = rng.binomial(20_000, 0.52, 2000)
    fair_rate = float(np.mean([srm([int(a), 20_000 - int(a)], [0.5, 0.5]).mismatch for a in fair]))
    skew_rate = float(np.mean([srm([int(a), 20_000 - int(a)], [0.5, 0.5]).mismatch for a in skewed]))
    # the chi-square test's power against 52/48 on 20,000: noncentrality 20,000 * 2 * 0.02^2 / 0.5 = 32
    power = float(stats.ncx2.sf(stats.chi2.isf(0.001, 1), 1, 32.0))
    report = (
        f"SRM flagged: fair 50/50 {fair_rate:.4f} of {sims} (nominal 0.001); "
        f"52/48 {skew_rate:.4f} of 2000 (predicted power {power:.4f})"
    )
    print(report)
    assert fair_rate <= 0.003, report
    assert abs(skew_rate - power) <= 0.01, report


@pytest.mark.parametrize(
    ("sims", "n"), [(2000, 2000), (2000, 800), pytest.param(5000, 2000, marks=pytest.mark.slow)]
)
def test_ab_detection_rate_matches_predicted_power(sims: int, n: int) -> None:
    """The challenger's list hit rate is 3 points worse (0.30 -> 0.27)."""
    rng = np.random.default_rng(1404)
    control, treatment = hit_rate(0.30)(rng, (sims, n)), hit_rate(0.27)(rng, (sims, n))
    observed = float(np.mean([p < ALPHA for p, _, _ in comparisons(control, treatment)]))
    sd = float(np.sqrt((0.30 * 0.70 + 0.27 * 0.73) / 2))
    predicted = predicted_power(n, sd, -0.03, ALPHA)
    report = f"power at n={n}/arm, {sims} experiments: predicted {predicted:.3f}, observed {observed:.3f}"
    print(report)
    assert abs(observed - predicted) <= 0.04, report


def run_rollout(challenger_p: float, seed: int, latency_shift: float = 0.0) -> list[RolloutDecision]:
    """Drive a rollout: 600 new households a day, each step analysed on its own households, a look
    every 2 days, at most 40 looks. Returns the decisions."""
    rng = np.random.default_rng(seed)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    state = start("exp-honest", now)
    decisions: list[RolloutDecision] = []
    arms: list[list[float]] = [[], []]
    latency: list[list[float]] = [[], []]
    day = 0
    for _look in range(40):
        share = STEPS[state.step]
        for _ in range(2):  # two days of new households, assigned by the real hash
            day += 1
            for i in range(600):
                arm = assign("exp-honest", f"hh_{seed}_{day}_{i}", challenger_weights(share))
                if arm is None:
                    continue
                p = 0.30 if arm == 0 else challenger_p
                arms[arm].append(float(rng.random() < p))
                latency[arm].append(float(rng.gamma(4, 5)) + (latency_shift if arm == 1 else 0.0))
        now += timedelta(days=2)
        data = ExperimentData(
            "exp-honest", ("champion", "challenger"), challenger_weights(share), (len(arms[0]), len(arms[1])),
            (now - state.started_at) / timedelta(days=1),
            MetricData("list_hit_rate", Direction.HIGHER_IS_BETTER, (np.array(arms[0]), np.array(arms[1]))),
            (MetricData("scoring_ms", Direction.LOWER_IS_BETTER, (np.array(latency[0]), np.array(latency[1]))),),
        )  # fmt: skip
        decision = decide(state, analyse(data), now)
        decisions.append(decision)
        state = apply(state, decision)
        if decision.action is Action.ADVANCE:
            arms, latency = [[], []], [[], []]  # the next step analyses its own households
        if state.status is not RolloutStatus.RUNNING:
            break
    return decisions


@pytest.mark.parametrize("seed", range(5))
def test_rollout_rolls_back_a_clearly_worse_challenger(seed: int) -> None:
    decisions = run_rollout(0.22, seed)
    trail = " -> ".join(f"{d.action.value}@{d.challenger_share:.0%}" for d in decisions)
    assert decisions[-1].action is Action.ROLLBACK, trail
    assert "list_hit_rate" in decisions[-1].reason, trail
    assert all(d.action is not Action.PROMOTE for d in decisions), trail


def test_rollout_rolls_back_on_a_guardrail() -> None:
    decisions = run_rollout(0.30, 11, latency_shift=5.0)
    assert decisions[-1].action is Action.ROLLBACK, decisions[-1].reason
    assert "scoring_ms" in decisions[-1].reason


@pytest.mark.parametrize("seed", range(5))
def test_rollout_promotes_a_clearly_better_challenger(seed: int) -> None:
    decisions = run_rollout(0.40, seed)
    trail = " -> ".join(f"{d.action.value}@{d.challenger_share:.0%}" for d in decisions)
    assert decisions[-1].action is Action.PROMOTE, trail
    assert [d.step for d in decisions if d.action is Action.ADVANCE] == [1, 2, 3], trail


def test_cuped_narrows_the_interval_without_bias() -> None:
    rng = np.random.default_rng(1405)
    sims, n, effect = 300, 1000, 1.0
    widths, estimates = [], []
    for _ in range(sims):
        before = (basket_value()(rng, (1, n))[0], basket_value()(rng, (1, n))[0])
        after = (before[0] * 0.8 + basket_value(0.5)(rng, (1, n))[0],
                 before[1] * 0.8 + basket_value(0.5)(rng, (1, n))[0] + effect)  # fmt: skip
        row = []
        for covariates in (None, before):
            metric = MetricData("basket_value", Direction.HIGHER_IS_BETTER, after, covariates)
            result = analyse(ExperimentData("exp-cuped", ("a", "b"), (0.5, 0.5), (n, n), 8.0, metric))
            m = result.metrics[0]
            row.append((m.sequential.ci_high - m.sequential.ci_low, m.welch.difference))
        widths.append(row[1][0] / row[0][0])
        estimates.append(row[1][1])
    ratio, bias = float(np.mean(widths)), float(np.mean(estimates)) - effect
    report = (
        f"CUPED over {sims} experiments: mean width ratio {ratio:.3f}, bias {bias:+.3f} (effect {effect})"
    )
    print(report)
    assert ratio < 0.85, report
    assert abs(bias) < 0.15, report


@pytest.mark.parametrize("seed", range(3))
def test_rollout_never_promotes_an_equal_challenger_on_noise(seed: int) -> None:
    decisions = run_rollout(0.30, 100 + seed)
    trail = " -> ".join(f"{d.action.value}@{d.challenger_share:.0%}" for d in decisions)
    assert all(d.action is not Action.PROMOTE for d in decisions), trail
