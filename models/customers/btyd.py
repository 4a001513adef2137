"""Buy-till-you-die models: BG/NBD, MBG/NBD and Pareto/NBD for the number of trips and P(alive),
Gamma-Gamma for the spend per trip. Log-likelihoods in log space (scipy.special), fitted by maximum
likelihood over the log of the parameters (scipy.optimize); the closed forms need only numpy and scipy.
The candidate models and the choice among them are in `models.customers.btyd_selection`.

Inputs are RFM summaries (`models.customers.rfm`): x repeat trips, t_x the time of the last one and T
the time since the first trip, in one time unit. A trip model may carry one time-invariant covariate z
(centred), which scales a parameter per customer: log theta_i = log theta + coef * z_i (Fader & Hardie,
"Incorporating time-invariant covariates into the Pareto/NBD and BG/NBD models", 2007).

References: Fader, Hardie & Lee (2005), "Counting your customers the easy way" (BG/NBD); Batislam, Denizel
& Filiztekin (2007) (MBG/NBD: a customer may also drop out right after the first trip); Fader & Hardie
(2005), "A Note on Deriving the Pareto/NBD Model and Related Expressions"; Fader & Hardie (2013), "The
Gamma-Gamma Model of Monetary Value". docs/customer_models.md has the formulas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, gammaincinv, gammaln, hyp2f1

from models.errors import TrainingError

F64 = npt.NDArray[np.float64]
Arr = npt.ArrayLike
TripKind = Literal["bgnbd", "mbgnbd", "pareto_nbd"]
PARAM_NAMES: dict[str, tuple[str, str, str, str]] = {
    "bgnbd": ("r", "alpha", "a", "b"),
    "mbgnbd": ("r", "alpha", "a", "b"),
    "pareto_nbd": ("r", "alpha", "s", "beta"),
}
# Which parameters a covariate scales (the variants compared in docs/customer_models.md).
COVARIATE_TARGETS: dict[str, tuple[str, ...]] = {
    "bgnbd": ("alpha", "a", "b"),
    "mbgnbd": ("alpha",),
    "pareto_nbd": ("alpha", "beta"),
}
START: dict[str, tuple[float, float, float, float]] = {
    "bgnbd": (0.5, 1.0, 1.0, 2.0),
    "mbgnbd": (0.5, 1.0, 1.0, 2.0),
    "pareto_nbd": (0.5, 1.0, 1.0, 1.0),
}
_QUADRATURE_NODES = 48


class TripModel(msgspec.Struct, frozen=True, kw_only=True):
    """A fitted trip model: its kind, parameters by name (``r, alpha, a, b`` or ``r, alpha, s, beta``),
    the optional covariate (its name, training mean and coefficients per scaled parameter) and the
    training log-likelihood."""

    kind: TripKind
    params: dict[str, float]
    covariate: str | None = None
    covariate_mean: float = 0.0
    coef: dict[str, float] = {}
    log_likelihood: float | None = None

    def individual(self, z: Arr | None = None) -> dict[str, F64]:
        """Each customer's parameters given the raw covariate values ``z`` (ignored without a covariate)."""
        out = {name: np.asarray(value, dtype=np.float64) for name, value in self.params.items()}
        if self.covariate is not None and z is not None:
            centred = np.asarray(z, dtype=np.float64) - self.covariate_mean
            for name, c in self.coef.items():
                out[name] = out[name] * np.exp(c * centred)
        return out


class GammaGamma(msgspec.Struct, frozen=True):
    """Gamma-Gamma: a trip's spend ~ Gamma(p, nu), nu ~ Gamma(q, gamma) per customer."""

    p: float
    q: float
    gamma: float
    log_likelihood: float | None = None


def _arrays(x: Arr, t_x: Arr, T: Arr) -> tuple[F64, F64, F64]:
    return (
        np.asarray(x, dtype=np.float64),
        np.asarray(t_x, dtype=np.float64),
        np.asarray(T, dtype=np.float64),
    )


def _pareto_log_a0(r: F64, alpha: F64, s: F64, beta: F64, x: F64, t_x: F64, T: F64) -> F64:
    """log A_0 of Fader & Hardie's note (eqs. 19-20): the hypergeometric argument is taken against the
    larger of alpha and beta, so it stays in [0, 1) and the series converges."""
    rsx = r + s + x
    big = np.maximum(alpha, beta)
    second = np.where(alpha >= beta, s + 1.0, r + x)
    gap = np.abs(alpha - beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        at_last = np.log(hyp2f1(rsx, second, rsx + 1.0, gap / (big + t_x))) - rsx * np.log(big + t_x)
        at_end = np.log(hyp2f1(rsx, second, rsx + 1.0, gap / (big + T))) - rsx * np.log(big + T)
        # at_last >= at_end; equal when the last trip was at T (then A_0 = 0).
        return np.asarray(at_last + np.log(-np.expm1(np.minimum(at_end - at_last, 0.0))), dtype=np.float64)


def _alive_log_odds(model: TripModel, x: F64, t_x: F64, T: F64, z: Arr | None) -> F64:
    """log(P(dead) / P(alive)) at T given the summary."""
    p = model.individual(z)
    r, alpha = p["r"], p["alpha"]
    with np.errstate(divide="ignore", invalid="ignore"):
        if model.kind == "pareto_nbd":
            s, beta = p["s"], p["beta"]
            out = (
                np.log(s)
                - np.log(r + s + x)
                + (r + x) * np.log(alpha + T)
                + s * np.log(beta + T)
                + _pareto_log_a0(r, alpha, s, beta, x, t_x, T)
            )
        elif model.kind == "mbgnbd":
            out = np.log(p["a"]) - np.log(p["b"] + x) + (r + x) * np.log((alpha + T) / (alpha + t_x))
        else:
            repeat = x > 0
            odds = np.log(p["a"]) - np.log(np.where(repeat, p["b"] + x - 1.0, 1.0))
            out = np.where(repeat, odds + (r + x) * np.log((alpha + T) / (alpha + t_x)), -np.inf)
    return np.asarray(out, dtype=np.float64)


def log_likelihood(model: TripModel, x: Arr, t_x: Arr, T: Arr, z: Arr | None = None) -> F64:
    """Per-customer log-likelihood of (x, t_x, T)."""
    x, t_x, T = _arrays(x, t_x, T)
    p = model.individual(z)
    r, alpha = p["r"], p["alpha"]
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        if model.kind == "pareto_nbd":
            s, beta = p["s"], p["beta"]
            alive = s * np.log(beta) - (r + x) * np.log(alpha + T) - s * np.log(beta + T)
            died = (
                s * np.log(beta)
                + np.log(s)
                - np.log(r + s + x)
                + _pareto_log_a0(r, alpha, s, beta, x, t_x, T)
            )
            out = base + np.logaddexp(alive, died)
        else:
            shift = 1.0 if model.kind == "mbgnbd" else 0.0
            head = base + betaln(p["a"], p["b"] + x + shift) - betaln(p["a"], p["b"])
            out = head - (r + x) * np.log(alpha + T) + np.logaddexp(0.0, _alive_log_odds(model, x, t_x, T, z))
    return np.asarray(out, dtype=np.float64)


def p_alive(model: TripModel, x: Arr, t_x: Arr, T: Arr, z: Arr | None = None) -> F64:
    """P(alive at T | x, t_x, T)."""
    x, t_x, T = _arrays(x, t_x, T)
    return np.asarray(1.0 / (1.0 + np.exp(_alive_log_odds(model, x, t_x, T, z))), dtype=np.float64)


def _one_minus_power_over(base: F64, exponent: F64) -> F64:
    """(1 - base**exponent) / exponent, continuous at exponent = 0 (where it is -log(base))."""
    log_base = np.log(base)
    safe = np.where(np.abs(exponent) < 1e-12, 1.0, exponent)
    return np.asarray(np.where(np.abs(exponent) < 1e-12, -log_base, -np.expm1(exponent * log_base) / safe))


def _alive_expected(model: TripModel, t: F64, x: F64, T: F64, z: Arr | None) -> F64:
    """Expected trips in (T, T + t] of a customer alive at T."""
    p = model.individual(z)
    r, alpha = p["r"], p["alpha"]
    if model.kind == "pareto_nbd":
        s, beta = p["s"], p["beta"]
        return np.asarray(
            (r + x) * (beta + T) / (alpha + T) * _one_minus_power_over((beta + T) / (beta + T + t), s - 1.0)
        )
    a, b = p["a"], p["b"]
    shift = 1.0 if model.kind == "mbgnbd" else 0.0
    tail = ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
        r + x, b + x + shift, a + b + x - 1.0 + shift, t / (alpha + T + t)
    )
    return np.asarray((a + b + x - 1.0 + shift) / (a - 1.0) * (1.0 - tail), dtype=np.float64)


def conditional_expected(model: TripModel, t: Arr, x: Arr, t_x: Arr, T: Arr, z: Arr | None = None) -> F64:
    """E[trips in (T, T + t] | x, t_x, T] = P(alive) x the alive customer's expectation."""
    x, t_x, T = _arrays(x, t_x, T)
    horizon = np.asarray(t, dtype=np.float64)
    return np.asarray(
        p_alive(model, x, t_x, T, z) * _alive_expected(model, horizon, x, T, z), dtype=np.float64
    )


def expected(model: TripModel, t: Arr, z: Arr | None = None) -> F64:
    """E[repeat trips in (0, t]] of a new customer (first trip at 0)."""
    horizon = np.asarray(t, dtype=np.float64)
    zero = np.zeros_like(horizon)
    if model.kind == "mbgnbd":  # the first trip itself may be followed by drop-out
        return np.asarray(conditional_expected(model, horizon, zero, zero, zero, z), dtype=np.float64)
    return _alive_expected(model, horizon, zero, zero, z)


def p_no_trip(model: TripModel, t: Arr, x: Arr, t_x: Arr, T: Arr, z: Arr | None = None) -> F64:
    """P(no trip in (T, T + t] | x, t_x, T): dead, or alive and quiet. Given alive, lambda's posterior is
    Gamma(r + x, alpha + T) (and Pareto's mu's Gamma(s, beta + T)); BG/NBD customers drop out only after
    a trip, so quiet = E[exp(-lambda t)]; a Pareto/NBD customer is quiet when death comes first,
    mu / (lambda + mu) + lambda / (lambda + mu) exp(-(lambda + mu) t), integrated over the quantiles of
    both posteriors by Gauss-Legendre (stable for any shape)."""
    x, t_x, T = _arrays(x, t_x, T)
    horizon = np.asarray(t, dtype=np.float64)
    alive = p_alive(model, x, t_x, T, z)
    p = model.individual(z)
    r, alpha = p["r"], p["alpha"]
    if model.kind != "pareto_nbd":
        quiet = ((alpha + T) / (alpha + T + horizon)) ** (r + x)
        return np.asarray(1.0 - alive + alive * quiet, dtype=np.float64)
    u, w = _LEGENDRE
    shape_l, rate_l, shape_m, rate_m, h = np.broadcast_arrays(
        r + x, alpha + T, p["s"], p["beta"] + T, horizon
    )
    lam = _gamma_quantiles(shape_l, u)[..., :, None] / rate_l[..., None, None]
    mu = _gamma_quantiles(shape_m, u)[..., None, :] / rate_m[..., None, None]
    f = (mu + lam * np.exp(-(lam + mu) * h[..., None, None])) / (lam + mu)
    quiet = np.einsum("...ij,i,j->...", f, w, w)
    return np.asarray(1.0 - alive + alive * quiet, dtype=np.float64)


def _gamma_quantiles(shape: F64, u: F64) -> F64:
    """gammaincinv(shape, u) for every shape (any array) and node: computed once per distinct shape
    (the posterior shapes r + x take few values: x counts trips), which is most of the time spent."""
    distinct, where = np.unique(shape, return_inverse=True)
    table = gammaincinv(distinct[:, None], u[None, :])
    return np.asarray(table[where.reshape(shape.shape)], dtype=np.float64)


def _legendre_unit(n: int) -> tuple[F64, F64]:
    """Gauss-Legendre nodes and weights on (0, 1): expectations over a distribution by its quantiles."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return np.asarray((nodes + 1.0) / 2.0, dtype=np.float64), np.asarray(weights / 2.0, dtype=np.float64)


_LEGENDRE = _legendre_unit(_QUADRATURE_NODES)


def gamma_gamma_log_likelihood(params: GammaGamma, x: Arr, zbar: Arr) -> F64:
    """Per-customer log-likelihood of the mean spend zbar over x >= 1 trips (Fader & Hardie 2013)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.asarray(zbar, dtype=np.float64)
    p, q, g = params.p, params.q, params.gamma
    px = p * x
    return np.asarray(
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(g)
        + (px - 1.0) * np.log(z)
        + px * np.log(x)
        - (px + q) * np.log(x * z + g),
        dtype=np.float64,
    )


def expected_spend(params: GammaGamma, x: Arr, zbar: Arr) -> F64:
    """E[spend per trip | x, zbar]: a weighted mean of the population mean p gamma / (q - 1) and the
    customer's own mean (the population mean for x = 0)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.asarray(zbar, dtype=np.float64)
    return np.asarray(params.p * (params.gamma + x * z) / (params.p * x + params.q - 1.0), dtype=np.float64)


def _minimise(negative_ll: Callable[[F64], float], start: F64, what: str) -> tuple[F64, float]:
    """Minimise over log-parameters: L-BFGS-B, then a Nelder-Mead polish from its optimum."""
    first = minimize(negative_ll, start, method="L-BFGS-B")
    polish = minimize(
        negative_ll,
        first.x,
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 5_000, "maxfev": 5_000},
    )
    best = polish if polish.fun <= first.fun else first
    if not np.isfinite(best.fun) or best.fun >= 1e299:
        raise TrainingError(f"{what}: the likelihood is not finite at any tried parameters")
    return np.asarray(best.x, dtype=np.float64), -float(best.fun)


def fit_trip_model(
    kind: TripKind,
    x: Arr,
    t_x: Arr,
    T: Arr,
    *,
    covariate: tuple[str, Arr] | None = None,
    weights: Arr | None = None,
) -> TripModel:
    """Maximum-likelihood fit of a trip model; ``covariate`` = (name, raw values per customer)."""
    x, t_x, T = _arrays(x, t_x, T)
    if x.size == 0:
        raise TrainingError(f"{kind}: no customers to fit")
    w = np.ones(x.size) if weights is None else np.asarray(weights, dtype=np.float64)
    names = PARAM_NAMES[kind]
    targets = COVARIATE_TARGETS[kind] if covariate is not None else ()
    z = None if covariate is None else np.asarray(covariate[1], dtype=np.float64)
    mean = float(np.mean(z)) if z is not None else 0.0
    scale = max(float(np.mean(T)), 1e-6)
    start = np.log(
        np.array(START[kind]) * np.array([1.0, scale, 1.0, scale if kind == "pareto_nbd" else 1.0])
    )

    def build(theta: F64, ll: float | None = None) -> TripModel:
        return TripModel(
            kind=kind,
            params={n: float(v) for n, v in zip(names, np.exp(theta[:4]), strict=True)},
            covariate=None if covariate is None else covariate[0],
            covariate_mean=mean,
            coef={n: float(c) for n, c in zip(targets, theta[4:], strict=True)},
            log_likelihood=ll,
        )

    def nll(theta: F64) -> float:
        # The optimiser tries extreme points (exp overflows there); they score as impossible, not as noise.
        with np.errstate(over="ignore", invalid="ignore"):
            value = -float(np.sum(w * log_likelihood(build(theta), x, t_x, T, z)))
        return value if np.isfinite(value) else 1e300

    theta, ll = _minimise(nll, np.concatenate([start, np.zeros(len(targets))]), kind)
    return build(theta, ll)


def fit_gamma_gamma(x: Arr, zbar: Arr) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma on the customers with repeat trips and positive mean spend."""
    x = np.asarray(x, dtype=np.float64)
    z = np.asarray(zbar, dtype=np.float64)
    keep = (x > 0) & (z > 0)
    if not keep.any():
        raise TrainingError("Gamma-Gamma: no customer with a repeat trip and positive spend")
    x, z = x[keep], z[keep]

    def nll(theta: F64) -> float:
        p, q, g = np.exp(theta)
        value = -float(np.sum(gamma_gamma_log_likelihood(GammaGamma(p, q, g), x, z)))
        return value if np.isfinite(value) else 1e300

    theta, ll = _minimise(nll, np.log([1.0, 2.0, float(np.mean(z))]), "Gamma-Gamma")
    p, q, g = np.exp(theta)
    return GammaGamma(float(p), float(q), float(g), ll)
