"""The buy-till-you-die models against the published CDNOW fits (Fader, Hardie & Lee 2005; Fader & Hardie's
Pareto/NBD and Gamma-Gamma notes), against numerical integration and simulation, and the edge scoring."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from scipy import integrate

from models.customers import btyd
from models.customers.cdnow import cdnow_path, load_cdnow
from models.customers.rfm import RfmSummary, rfm_summary
from models.customers.scoring import CustomerModelParams, churn_band, score_households

needs_cdnow = pytest.mark.skipif(not cdnow_path().exists(), reason="CDNOW data missing: run `make cdnow`")
BG_PUBLISHED = btyd.TripModel(kind="bgnbd", params={"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
PN_PUBLISHED = btyd.TripModel(
    kind="pareto_nbd", params={"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
)


def fitted_ll(model: btyd.TripModel) -> float:
    assert model.log_likelihood is not None
    return model.log_likelihood


@pytest.fixture(scope="module")
def cdnow() -> RfmSummary:
    if not cdnow_path().exists():
        pytest.skip("CDNOW data missing: run `make cdnow`")
    return load_cdnow()


@needs_cdnow
def test_cdnow_summary_matches_the_published_one(cdnow: RfmSummary) -> None:
    published = np.genfromtxt(
        cdnow_path().parent / "cdnow_customers_summary_with_transactions.csv", delimiter=",", names=True
    )
    assert cdnow.size == 2357
    np.testing.assert_array_equal(cdnow.customers.astype(int), published["ID"])
    np.testing.assert_array_equal(cdnow.x, published["x"])
    np.testing.assert_allclose(cdnow.t_x, published["t_x"], atol=0.005)  # published rounded to 2 decimals
    np.testing.assert_allclose(cdnow.T, published["T"], atol=0.005)
    np.testing.assert_allclose(cdnow.zbar, published["zbar"], atol=0.005)
    assert cdnow.x.sum() == 2457
    assert cdnow.holdout_trips.sum() == 1882


@needs_cdnow
@pytest.mark.parametrize(
    ("kind", "published", "published_ll"),
    [
        ("bgnbd", {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, -9582.4),
        ("pareto_nbd", {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, -9595.0),
    ],
)
def test_fits_reproduce_the_published_parameters(
    cdnow: RfmSummary, kind: btyd.TripKind, published: dict[str, float], published_ll: float
) -> None:
    model = btyd.fit_trip_model(kind, cdnow.x, cdnow.t_x, cdnow.T)
    assert {k: round(v, 3) for k, v in model.params.items()} == published
    assert round(fitted_ll(model), 1) == published_ll
    assert fitted_ll(model) == pytest.approx(
        float(np.sum(btyd.log_likelihood(model, cdnow.x, cdnow.t_x, cdnow.T)))
    )


@needs_cdnow
def test_gamma_gamma_reproduces_the_published_fit(cdnow: RfmSummary) -> None:
    spend = btyd.fit_gamma_gamma(cdnow.x, cdnow.zbar)
    assert (round(spend.p, 2), round(spend.q, 2), round(spend.gamma, 2)) == (6.25, 3.74, 15.44)
    # Customer 1 (x = 2, zbar = 22.35) is shrunk towards the population mean p gamma / (q - 1) = 35.2.
    assert btyd.expected_spend(spend, 2, 22.345) == pytest.approx(24.65, abs=0.01)
    assert btyd.expected_spend(spend, 0, 0.0) == pytest.approx(spend.p * spend.gamma / (spend.q - 1))


@needs_cdnow
@pytest.mark.parametrize(
    ("model", "mae", "rmse", "corr"),
    [(BG_PUBLISHED, 0.786, 1.608, 0.626), (PN_PUBLISHED, 0.755, 1.603, 0.630)],
)
def test_holdout_errors_of_the_published_fits(
    cdnow: RfmSummary, model: btyd.TripModel, mae: float, rmse: float, corr: float
) -> None:
    pred = btyd.conditional_expected(model, 39.0, cdnow.x, cdnow.t_x, cdnow.T)
    err = pred - cdnow.holdout_trips
    assert round(float(np.abs(err).mean()), 3) == mae
    assert round(float(np.sqrt((err**2).mean())), 3) == rmse
    assert round(float(np.corrcoef(pred, cdnow.holdout_trips)[0, 1]), 3) == corr
    assert float(np.abs(cdnow.holdout_trips).mean()) == pytest.approx(0.799, abs=0.001)


def test_bgnbd_customer_one_of_the_paper() -> None:
    # Fader, Hardie & Lee (2005): x = 2, t_x = 30.43, T = 38.86 -> 1.226 expected trips in 39 weeks.
    assert btyd.conditional_expected(BG_PUBLISHED, 39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)


def _pareto_likelihood_by_integration(model: btyd.TripModel, x: int, t_x: float, T: float) -> float:
    """The individual-level likelihood integrated over lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta)."""
    r, alpha, s, beta = (model.params[k] for k in ("r", "alpha", "s", "beta"))
    log_norm = r * math.log(alpha) + s * math.log(beta) - math.lgamma(r) - math.lgamma(s)

    def individual(mu: float, lam: float) -> float:
        total = lam + mu
        density = math.exp(
            log_norm + (r - 1) * math.log(lam) - alpha * lam + (s - 1) * math.log(mu) - beta * mu
        )
        return (
            lam**x * mu / total * math.exp(-total * t_x) + lam ** (x + 1) / total * math.exp(-total * T)
        ) * density

    value, _ = integrate.dblquad(individual, 0, 40, 0, 40, epsabs=1e-12, epsrel=1e-8)
    return float(value)


@pytest.mark.parametrize(
    "params",
    [
        {"r": 1.5, "alpha": 3.0, "s": 2.0, "beta": 8.0},  # alpha < beta
        {"r": 1.5, "alpha": 8.0, "s": 2.0, "beta": 3.0},  # alpha > beta
        {"r": 1.5, "alpha": 5.0, "s": 2.0, "beta": 5.0},  # equal: the hypergeometric term is 1
    ],
)
def test_pareto_likelihood_matches_numerical_integration(params: dict[str, float]) -> None:
    model = btyd.TripModel(kind="pareto_nbd", params=params)
    for x, t_x, T in [(0, 0.0, 6.0), (3, 4.0, 6.0), (2, 6.0, 6.0)]:
        expected = _pareto_likelihood_by_integration(model, x, t_x, T)
        got = float(np.exp(btyd.log_likelihood(model, x, t_x, T)))
        assert got == pytest.approx(expected, rel=1e-4), (params, x, t_x, T)


def _simulate(kind: str, params: dict[str, float], n: int, T: float, horizon: float, seed: int) -> RfmSummary:
    """Customers born at 0, observed to T, with trips counted to T + horizon (daily grid of 1/7 week)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    if kind == "pareto_nbd":
        death = rng.exponential(1 / rng.gamma(params["s"], 1 / params["beta"], n))
        drop = None
    else:
        death = np.full(n, np.inf)
        drop = rng.beta(params["a"], params["b"], n)
    customers, days = [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    for i in range(n):
        t, times = 0.0, [0.0]
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T + horizon or t > death[i]:
                break
            times.append(t)
            if drop is not None and rng.random() < drop[i]:
                break
        customers.append(np.full(len(times), i))
        days.append(np.asarray(times))
    day = np.floor(np.concatenate(days) * 7).astype(np.int64)
    who = np.concatenate(customers)
    return rfm_summary(
        who, day, np.ones(day.size), calibration_end_day=int(T * 7) + 1, holdout_days=horizon * 7
    )


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("bgnbd", {"r": 0.8, "alpha": 4.0, "a": 0.8, "b": 2.5}),
        ("pareto_nbd", {"r": 0.8, "alpha": 4.0, "s": 0.7, "beta": 10.0}),
    ],
)
def test_fit_recovers_simulated_parameters_and_predicts_their_future(
    kind: btyd.TripKind, params: dict[str, float]
) -> None:
    data = _simulate(kind, params, 4000, 30.0, 30.0, seed=3)
    model = btyd.fit_trip_model(kind, data.x, data.t_x, data.T)
    truth = btyd.TripModel(kind=kind, params=params)
    truth_ll = float(np.sum(btyd.log_likelihood(truth, data.x, data.t_x, data.T)))
    assert fitted_ll(model) >= truth_ll  # the optimum is at least as likely as the truth
    assert fitted_ll(model) - truth_ll < 10  # ... and not far off it (4 parameters)
    pred = btyd.conditional_expected(model, 30.0, data.x, data.t_x, data.T)
    assert pred.sum() == pytest.approx(data.holdout_trips.sum(), rel=0.08)
    # P(no trip) in the first 2 weeks of the holdout vs the simulated share of quiet customers.
    early = _simulate(kind, params, 4000, 30.0, 2.0, seed=3)
    quiet = btyd.p_no_trip(truth, 2.0, early.x, early.t_x, early.T)
    assert quiet.mean() == pytest.approx(float(np.mean(early.holdout_trips == 0)), abs=0.015)


@pytest.mark.parametrize(("x", "t_x", "T"), [(0, 0.0, 30.0), (4, 12.0, 30.0), (200, 29.5, 30.0)])
def test_pareto_p_no_trip_matches_monte_carlo(x: int, t_x: float, T: float) -> None:
    model = btyd.TripModel(kind="pareto_nbd", params={"r": 0.8, "alpha": 4.0, "s": 0.7, "beta": 10.0})
    rng = np.random.default_rng(1)
    lam = rng.gamma(0.8 + x, 1 / (4.0 + T), 400_000)  # the posteriors given alive at T
    mu = rng.gamma(0.7, 1 / (10.0 + T), 400_000)
    t = 3.0
    quiet = np.mean(mu / (lam + mu) + lam / (lam + mu) * np.exp(-(lam + mu) * t))
    alive = float(btyd.p_alive(model, x, t_x, T))
    assert float(btyd.p_no_trip(model, t, x, t_x, T)) == pytest.approx(1 - alive + alive * quiet, abs=2e-3)


def test_covariate_fit_finds_a_planted_effect() -> None:
    rng = np.random.default_rng(5)
    n = 1500
    z = rng.normal(3.0, 0.8, n)
    alpha = 4.0 * np.exp(-0.6 * (z - 3.0))
    lam = rng.gamma(0.9, 1 / alpha)
    T = np.full(n, 30.0)
    alive_until = np.minimum(rng.exponential(1 / rng.gamma(0.7, 1 / 10.0, n)), T)
    counts = rng.poisson(lam * alive_until)  # a Poisson process: the last of `counts` uniforms is t_x
    t_x = np.where(counts > 0, alive_until * rng.beta(np.maximum(counts, 1), 1.0), 0.0)
    model = btyd.fit_trip_model("pareto_nbd", counts, t_x, T, covariate=("z", z))
    assert model.coef["alpha"] == pytest.approx(-0.6, abs=0.15)
    plain = btyd.fit_trip_model("pareto_nbd", counts, t_x, T)
    assert fitted_ll(model) > fitted_ll(plain) + 20


def test_expected_trips_of_a_new_customer_match_simulation() -> None:
    for kind, params in [
        ("bgnbd", {"r": 0.8, "alpha": 4.0, "a": 0.8, "b": 2.5}),
        ("pareto_nbd", {"r": 0.8, "alpha": 4.0, "s": 0.7, "beta": 10.0}),
    ]:
        data = _simulate(kind, params, 6000, 0.0, 20.0, seed=8)
        got = float(btyd.expected(btyd.TripModel(kind=kind, params=params), 20.0))  # type: ignore[arg-type]
        assert got == pytest.approx(float(data.holdout_trips.mean()), rel=0.06), kind


def test_mbgnbd_p_alive_is_below_one_even_without_repeat_trips() -> None:
    model = btyd.TripModel(kind="mbgnbd", params={"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6})
    bg = btyd.TripModel(kind="bgnbd", params={"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6})
    assert float(btyd.p_alive(bg, 0, 0.0, 30.0)) == 1.0
    assert 0 < float(btyd.p_alive(model, 0, 0.0, 30.0)) < 1
    assert float(btyd.conditional_expected(model, 10, 3, 20.0, 30.0)) > float(
        btyd.conditional_expected(model, 10, 3, 5.0, 30.0)
    )


def test_scoring_closed_forms_and_bands() -> None:
    spend = btyd.GammaGamma(6.25, 3.74, 15.44)
    params = CustomerModelParams(trips=PN_PUBLISHED, spend=spend, card={"trained": "2026-12-07"})
    assert msgspec.json.decode(msgspec.json.encode(params), type=CustomerModelParams) == params
    x, t_x, T, zbar = (
        np.array([2.0, 0.0, 10.0]),
        np.array([30.43, 0.0, 35.0]),
        np.array([38.86, 38.86, 38.0]),
        np.array([22.35, 0.0, 40.0]),
    )
    flat = score_households(
        params, x=x, t_x_days=t_x * 7, T_days=T * 7, zbar=zbar, annual_discount=0.0, clv_days=91.0
    )
    np.testing.assert_allclose(
        flat.expected_trips, btyd.conditional_expected(PN_PUBLISHED, 90 / 7, x, t_x, T)
    )
    trips_91 = btyd.conditional_expected(PN_PUBLISHED, 13.0, x, t_x, T)
    np.testing.assert_allclose(flat.clv, trips_91 * btyd.expected_spend(spend, x, zbar), rtol=1e-9)
    discounted = score_households(params, x=x, t_x_days=t_x * 7, T_days=T * 7, zbar=zbar, clv_days=91.0)
    assert np.all(discounted.clv < flat.clv)
    np.testing.assert_allclose(discounted.p_alive, btyd.p_alive(PN_PUBLISHED, x, t_x, T))
    assert np.all(discounted.p_churn >= 1 - discounted.p_alive)
    assert churn_band(p_alive=0.6, p_churn=0.7, days_since_last=35, mean_interval_days=7) == (
        "at_risk",
        "your usual weekly trip has not happened for 5 weeks",
    )
    assert churn_band(p_alive=0.95, p_churn=0.1, days_since_last=3, mean_interval_days=6.5) == (
        "active",
        "you shop about every 6 days; the last trip was 3 days ago",
    )
    assert churn_band(p_alive=0.1, p_churn=0.9, days_since_last=80, mean_interval_days=None)[0] == "lapsed"
