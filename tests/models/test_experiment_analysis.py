"""The statistics of `models.experiments.analysis` and `sequential` against scipy and hand-worked values,
and `analyse`'s verdicts on constructed experiments."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from scipy import stats

from models.experiments import (
    Direction,
    ExperimentData,
    ExperimentError,
    MetricData,
    Verdict,
    analyse,
    benjamini_hochberg,
    cuped,
    cuped_theta,
    holm,
    min_sample_reached,
    predicted_power,
    required_sample_size,
    sequential_ci,
    sequential_halfwidth,
    sequential_rho,
    srm,
    summarise,
    weighted_score,
    welch,
)

RNG_SEED = 20261207


def test_summarise_matches_the_t_interval() -> None:
    x = np.random.default_rng(RNG_SEED).gamma(2.0, 3.0, 400)
    s = summarise(x)
    low, high = stats.t.interval(0.95, x.size - 1, loc=x.mean(), scale=stats.sem(x))
    assert s.n == 400
    assert (s.mean, s.variance) == pytest.approx((x.mean(), x.var(ddof=1)))
    assert (s.ci_low, s.ci_high) == pytest.approx((low, high))


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(RNG_SEED)
    control, treatment = rng.normal(10, 2, 300), rng.normal(10.4, 3, 180)
    c = welch(control, treatment)
    ref = stats.ttest_ind(treatment, control, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert c.enough_data
    assert c.difference == pytest.approx(treatment.mean() - control.mean())
    assert c.t_statistic == pytest.approx(ref.statistic)
    assert c.p_value == pytest.approx(ref.pvalue)
    assert c.df == pytest.approx(ref.df)
    assert (c.ci_low, c.ci_high) == pytest.approx((ci.low, ci.high))
    assert c.relative_lift == pytest.approx(c.difference / control.mean())


@pytest.mark.parametrize(
    ("control", "treatment", "why"),
    [([1.0], [2.0, 3.0], "1 control"), ([], [], "0 control"), ([2.0, 2.0], [3.0, 3.0], "zero variance")],
)
def test_welch_without_enough_data_says_so(control: list[float], treatment: list[float], why: str) -> None:
    c = welch(control, treatment)
    assert not c.enough_data
    assert why.rsplit(maxsplit=1)[-1] in c.reason
    assert c.p_value == 1.0
    assert (c.ci_low, c.ci_high) == (-math.inf, math.inf)
    s = sequential_ci(c)
    assert not s.significant
    assert not s.enough_data


def test_welch_refuses_non_finite_values() -> None:
    with pytest.raises(ExperimentError, match="finite"):
        welch([1.0, float("nan")], [1.0, 2.0])


def test_cuped_theta_is_the_pooled_regression_slope_and_keeps_the_difference() -> None:
    rng = np.random.default_rng(RNG_SEED)
    x = [rng.normal(5, 2, 2000), rng.normal(5, 2, 2000)]
    y = [1.5 * x[0] + rng.normal(0, 1, 2000), 1.5 * x[1] + 0.3 + rng.normal(0, 1, 2000)]
    pooled_x, pooled_y = np.concatenate(x), np.concatenate(y)
    slope = np.cov(pooled_x, pooled_y)[0, 1] / pooled_x.var(ddof=1)
    assert cuped_theta(y, x) == pytest.approx(slope)
    adjusted = cuped(y, x)
    raw, adj = welch(y[0], y[1]), welch(adjusted[0], adjusted[1])
    assert adj.ci_high - adj.ci_low < 0.5 * (raw.ci_high - raw.ci_low)
    assert adj.difference == pytest.approx(0.3, abs=0.1)
    assert adjusted[0].mean() == pytest.approx(y[0].mean() - slope * (x[0].mean() - pooled_x.mean()))
    with pytest.raises(ExperimentError, match="covariate"):
        cuped(y, [x[0], x[1][:-1]])


def test_cuped_with_a_constant_covariate_changes_nothing() -> None:
    y = [np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0])]
    assert cuped_theta(y, [np.ones(3), np.ones(2)]) == 0.0
    assert all(np.array_equal(a, b) for a, b in zip(cuped(y, [np.ones(3), np.ones(2)]), y, strict=True))


def test_srm_matches_scipy_and_flags_a_broken_split() -> None:
    fair = srm([10_030, 9_970], [0.5, 0.5])
    ref = stats.chisquare([10_030, 9_970])
    assert fair.chi2 == pytest.approx(ref.statistic)
    assert fair.p_value == pytest.approx(ref.pvalue)
    assert not fair.mismatch
    skewed = srm([10_400, 9_600], [0.5, 0.5])
    assert skewed.mismatch, skewed
    uneven = srm([1_000, 9_000], [0.1, 0.9])
    assert not uneven.mismatch
    assert uneven.expected == pytest.approx([1_000, 9_000])
    assert not srm([0, 0], [0.5, 0.5]).mismatch
    with pytest.raises(ExperimentError):
        srm([1, 2, 3], [0.5, 0.5])


def test_holm_and_benjamini_hochberg() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])  # worked by hand
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    many = np.random.default_rng(RNG_SEED).uniform(0, 0.2, 25)
    assert benjamini_hochberg(many.tolist()) == pytest.approx(stats.false_discovery_control(many).tolist())
    assert all(a >= r for a, r in zip(holm(many.tolist()), many, strict=True))
    assert holm([]) == []


def test_min_sample_gate() -> None:
    assert min_sample_reached([30, 45], 7).reached
    gate = min_sample_reached([29, 45], 3.5)
    assert not gate.reached
    assert "fewer than 30 households (arm 0: 29)" in gate.reason
    assert "3.5 of 7 days" in gate.reason
    assert min_sample_reached([100, 100], 14, min_n=200, min_days=14).reason.startswith("fewer than 200")


def test_sample_size_and_power_agree() -> None:
    # 2 (1.95996 + 0.84162)^2 / 0.2^2 = 392.4 households per arm for 0.2 sd
    assert required_sample_size(1.0, 1.0, 0.2) == 393
    assert required_sample_size(0.5, 1.0, 0.2, relative=False) == 393
    n = required_sample_size(0.30, 0.458, 0.10, alpha=0.05, power=0.9)
    assert predicted_power(n, 0.458, 0.03, 0.05) == pytest.approx(0.9, abs=0.002)
    assert predicted_power(1000, 1.0, 0.0) == pytest.approx(0.05)
    assert predicted_power(10_000, 1.0, 0.2) > 0.999
    with pytest.raises(ExperimentError):
        required_sample_size(0.0, 1.0, 0.1)


def test_weighted_score_components() -> None:
    best = weighted_score(1.0, 1.0, 0.0, 0.0)
    assert best.total == pytest.approx(1.0)
    s = weighted_score(0.5, 0.8, processing_time_ms=100.0, cost=1.0)
    assert (s.success, s.confidence, s.time, s.cost) == (0.5, 0.8, 0.5, 0.5)
    assert s.total == pytest.approx(0.4 * 0.5 + 0.3 * 0.8 + 0.2 * 0.5 + 0.1 * 0.5)
    assert weighted_score(1.5, -1.0, 10.0, 0.0).success == 1.0
    with pytest.raises(ExperimentError):
        weighted_score(0.5, 0.5, -1.0, 0.0)


def test_sequential_matches_the_published_formula() -> None:
    rho = sequential_rho(0.05, 5000)
    assert rho == pytest.approx(math.sqrt((-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 5000))
    n, var = 2000, 4.0
    expected = math.sqrt(
        var * 2 * (n * rho**2 + 1) / (n**2 * rho**2) * math.log(math.sqrt(n * rho**2 + 1) / 0.05)
    )
    assert sequential_halfwidth(var, n, 0.05, 5000) == pytest.approx(expected)
    # always wider than the fixed-horizon interval with the same standard error
    assert expected > 1.96 * math.sqrt(var / n)


def test_sequential_p_value_agrees_with_its_interval() -> None:
    rng = np.random.default_rng(RNG_SEED)
    for shift in np.linspace(0.0, 0.4, 30):
        c = welch(rng.normal(0, 1, 500), rng.normal(shift, 1, 500))
        s = sequential_ci(c)
        assert s.significant == (s.ci_low > 0 or s.ci_high < 0), (shift, s)
        assert s.p_value >= c.p_value or s.p_value == pytest.approx(c.p_value)


def arms_data(
    effect: float, n: int = 600, days: float = 10.0, seed: int = RNG_SEED, latency_effect: float = 0.0
) -> ExperimentData:
    rng = np.random.default_rng(seed)
    hits = MetricData(
        "list_hit_rate",
        Direction.HIGHER_IS_BETTER,
        (rng.binomial(1, 0.30, n).astype(float), rng.binomial(1, 0.30 + effect, n).astype(float)),
    )
    latency = MetricData(
        "scoring_ms", Direction.LOWER_IS_BETTER, (rng.gamma(4, 5, n), rng.gamma(4, 5, n) + latency_effect)
    )
    return ExperimentData("exp-1", ("champion", "challenger"), (0.5, 0.5), (n, n), days, hits, (latency,))


def test_analyse_verdicts() -> None:
    better = analyse(arms_data(0.15))
    assert better.verdict is Verdict.CHALLENGER_BETTER, better.reason
    primary = better.metrics[0]
    assert primary.role == "primary"
    assert primary.effect == "better"
    assert primary.p_adjusted >= primary.sequential.p_value
    worse = analyse(arms_data(0.0, latency_effect=8.0))
    assert worse.verdict is Verdict.CHALLENGER_WORSE
    assert "scoring_ms" in worse.reason
    lower_hits = analyse(arms_data(-0.15))
    assert lower_hits.verdict is Verdict.CHALLENGER_WORSE
    assert "list_hit_rate" in lower_hits.reason
    assert analyse(arms_data(0.0)).verdict is Verdict.NO_DIFFERENCE
    collecting = analyse(arms_data(0.15, days=3))
    assert collecting.verdict is Verdict.COLLECTING
    assert "3.0 of 7 days" in collecting.reason


def test_analyse_flags_srm_before_anything_else() -> None:
    data = arms_data(0.15)
    skewed = ExperimentData(
        data.experiment_id,
        data.arms,
        data.weights,
        (700, 500),
        data.days_running,
        data.primary,
        data.guardrails,
    )
    result = analyse(skewed)
    assert result.verdict is Verdict.SRM
    assert result.srm.mismatch


def test_analyse_fixed_horizon_mode_and_three_arms() -> None:
    rng = np.random.default_rng(RNG_SEED)
    values = tuple(rng.normal(mu, 1.0, 400) for mu in (0.0, 0.0, 0.5))
    metric = MetricData("mae_days", Direction.LOWER_IS_BETTER, values)
    data = ExperimentData("exp-3", ("a", "b", "c"), (1 / 3,) * 3, (400,) * 3, 8.0, metric, sequential=False)
    result = analyse(data)
    assert [v.verdict for v in result.challengers] == [Verdict.NO_DIFFERENCE, Verdict.CHALLENGER_WORSE]
    assert result.verdict is Verdict.CHALLENGER_WORSE
    assert result.metrics[1].p_adjusted == pytest.approx(
        min(1.0, 2 * result.metrics[1].welch.p_value), rel=1e-6
    )


def test_analyse_uses_cuped_when_given_covariates() -> None:
    rng = np.random.default_rng(RNG_SEED)
    pre = (rng.gamma(3, 10, 800), rng.gamma(3, 10, 800))
    post = (pre[0] + rng.normal(0, 5, 800), pre[1] + 2.0 + rng.normal(0, 5, 800))
    plain = MetricData("basket_value", Direction.HIGHER_IS_BETTER, post)
    adjusted = MetricData("basket_value", Direction.HIGHER_IS_BETTER, post, covariates=pre)
    base = ("exp-c", ("a", "b"), (0.5, 0.5), (800, 800), 9.0)
    r_plain, r_adj = analyse(ExperimentData(*base, plain)), analyse(ExperimentData(*base, adjusted))
    assert r_plain.metrics[0].cuped_theta is None
    assert r_adj.metrics[0].cuped_theta == pytest.approx(1.0, abs=0.05)
    widths = [r.metrics[0].sequential.ci_high - r.metrics[0].sequential.ci_low for r in (r_plain, r_adj)]
    assert widths[1] < 0.3 * widths[0]
    assert r_adj.verdict is Verdict.CHALLENGER_BETTER


def test_result_encodes_to_json_for_the_http_api() -> None:
    result = analyse(arms_data(0.15))
    decoded = msgspec.json.decode(msgspec.json.encode(result))
    assert decoded["verdict"] == "challenger_better"
    assert decoded["metrics"][0]["direction"] == "higher"


def test_analyse_refuses_inconsistent_arms() -> None:
    data = arms_data(0.0)
    with pytest.raises(ExperimentError):
        analyse(ExperimentData("x", ("a", "b", "c"), (0.5, 0.5), (1, 1), 8.0, data.primary))
