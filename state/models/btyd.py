"""BTYD models: BG/NBD (is a customer still buying, how much more) and Gamma-Gamma (spend).

Pure numpy/scipy. Per customer, ``x`` is the number of repeat purchases, ``t_x`` the time
of the last purchase after the first (BTYD's "recency", never called that here so it is not
confused with RFM recency) and ``T`` the time from the first purchase to the end of
calibration, all in one period unit (weeks for CDNOW). Sources: Fader, Hardie & Lee (2005)
"Counting your customers the easy way" (BG/NBD); Fader, Hardie & Lee (2005) "RFM and CLV"
and Fader & Hardie (2013) "The Gamma-Gamma model of monetary value".

>>> published = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
>>> p_alive(published, x=[0, 2], t_x=[0.0, 30.43], T=[38.86, 38.86]).round(3)
array([1.   , 0.727])
>>> expected_purchases(published, 39, x=[0, 2], t_x=[0.0, 30.43], T=[38.86, 38.86]).round(3)
array([0.195, 1.226])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

__all__ = [
    "BgNbdParams",
    "GammaGammaParams",
    "bgnbd_log_likelihood",
    "clv",
    "expected_average_spend",
    "expected_next_purchase_in",
    "expected_purchases",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "gamma_gamma_log_likelihood",
    "p_alive",
]

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD: purchase rates ~ Gamma(r, alpha), dropout probabilities ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = math.nan  # of the data it was fitted on; nan if not fitted


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma: spend per purchase ~ Gamma(p, nu), nu ~ Gamma(q, gamma) across customers."""

    p: float
    q: float
    gamma: float
    log_likelihood: float = math.nan


def _summary(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[Floats, Floats, Floats]:
    xs, tx, tt = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, t_x, T)))
    if not (np.all(np.isfinite(tt)) and np.all(xs >= 0) and np.all(tx >= 0) and np.all(tx <= tt)):
        raise ValueError("BTYD summaries need finite x >= 0 and 0 <= t_x <= T, in periods")
    return xs, tx, tt


def _rab(params: BgNbdParams | Sequence[float]) -> tuple[float, float, float, float]:
    if isinstance(params, BgNbdParams):
        return params.r, params.alpha, params.a, params.b
    r, alpha, a, b = (float(v) for v in params)
    return r, alpha, a, b


def _bgnbd_terms(params: Sequence[float] | Floats, x: Floats, t_x: Floats, T: Floats) -> Floats:
    """Per-customer BG/NBD log-likelihood, computed in log space."""
    r, alpha, a, b = params
    repeat = x > 0
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    stays = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    drops = betaln(a + 1, np.where(repeat, b + x - 1, b)) - (r + x) * np.log(alpha + t_x)
    return np.asarray(head + np.logaddexp(stays, np.where(repeat, drops, -np.inf)), dtype=np.float64)


def _bgnbd_gradient(params: Sequence[float] | Floats, x: Floats, t_x: Floats, T: Floats) -> Floats:
    """Per-customer gradient of :func:`_bgnbd_terms` in ``(r, alpha, a, b)``, one row per customer.

    With ``w`` the weight of the "still active" branch in the log-sum (``1 - w`` the "dropped out
    after the last purchase" one, 0 without repeats), and ``d(lnB(p, q))/dp = psi(p) - psi(p + q)``.
    """
    r, alpha, a, b = params
    repeat = x > 0
    stays = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    drops = np.where(
        repeat, betaln(a + 1, np.where(repeat, b + x - 1, b)) - (r + x) * np.log(alpha + t_x), -np.inf
    )
    w = np.exp(stays - np.logaddexp(stays, drops))
    v = 1.0 - w
    psi_abx = digamma(a + b + x)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w * np.log(alpha + T) - v * np.log(alpha + t_x)
    d_alpha = r / alpha - w * (r + x) / (alpha + T) - v * (r + x) / (alpha + t_x)
    d_a = digamma(a + b) - digamma(a) + w * (digamma(a) - psi_abx) + v * (digamma(a + 1) - psi_abx)
    d_b = (
        digamma(a + b) - digamma(b) + w * (digamma(b + x) - psi_abx)
        + v * (digamma(np.where(repeat, b + x - 1, b)) - psi_abx)
    )  # fmt: skip
    return np.column_stack([d_r, d_alpha, d_a, d_b])


def bgnbd_log_likelihood(
    params: BgNbdParams | Sequence[float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> float:
    """Total BG/NBD log-likelihood of ``(r, alpha, a, b)`` over customers."""
    return float(np.sum(_bgnbd_terms(_rab(params), *_summary(x, t_x, T))))


_LOG_BOUND = 30.0  # log-parameters are clipped to +-this: exp() stays finite


def _params(log_params: Floats) -> Floats:
    """The parameters of clipped log-parameters (what every objective evaluates)."""
    return np.exp(np.clip(log_params, -_LOG_BOUND, _LOG_BOUND))


def _with_log_gradient(
    objective: Callable[[Floats], float], gradient: Callable[[Floats], Floats]
) -> Callable[[Floats], tuple[float, Floats]]:
    """``objective`` (minus a log-likelihood, of the log-parameters) with its gradient, for L-BFGS-B.

    ``gradient`` is the log-likelihood's gradient in the parameters themselves; the chain rule
    through ``exp`` multiplies it by the parameters, and it is 0 where the clip holds a parameter.
    """

    def with_gradient(log_params: Floats) -> tuple[float, Floats]:
        value = objective(log_params)
        if not math.isfinite(value):
            return value, np.zeros_like(log_params)
        params = _params(log_params)
        return value, np.where(np.abs(log_params) < _LOG_BOUND, -gradient(params) * params, 0.0)

    return with_gradient


def _fit(
    objective: Callable[[Floats], float],
    starts: Sequence[Sequence[float]],
    *,
    polish: bool = True,
    with_gradient: Callable[[Floats], tuple[float, Floats]] | None = None,
) -> tuple[Floats, float]:
    """Minimise over log-parameters: L-BFGS-B from each start, Nelder-Mead polish of the best.

    ``with_gradient``: the objective and its gradient in one call, for L-BFGS-B (else it
    estimates the gradient by finite differences, one more objective call per parameter).
    """
    if with_gradient is not None:
        runs = [minimize(with_gradient, np.log(start), method="L-BFGS-B", jac=True) for start in starts]
    else:
        runs = [minimize(objective, np.log(start), method="L-BFGS-B") for start in starts]
    best = np.asarray(min(runs, key=lambda run: float(run.fun)).x, np.float64)
    options = {"xatol": 1e-9, "fatol": 1e-9, "maxiter": 20_000, "maxfev": 20_000}
    polished = (
        np.asarray(minimize(objective, best, method="Nelder-Mead", options=options).x, np.float64)
        if polish
        else best
    )
    value = objective(polished)
    if not math.isfinite(value):
        raise ValueError("the likelihood is not finite at the optimum found: check the summaries")
    return np.exp(polished), -value


def fit_bgnbd(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    *,
    initial: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    quick: bool = False,
    polish: bool = True,
    analytic_gradient: bool = True,
) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters (deterministic; several starts, best kept).

    ``quick``: one L-BFGS-B run from ``initial`` and no polish, for a refit starting from the
    previous fit's parameters. ``polish=False``: no Nelder-Mead polish of the best start (the
    L-BFGS-B optimum, agreeing with the polished one to about three significant digits).
    ``analytic_gradient=False``: L-BFGS-B estimates the gradient by finite differences (the
    baseline ``bench/refit_cost.py`` times the analytic gradient against).
    """
    data = _summary(x, t_x, T)
    scale = float(np.mean(data[2]))
    # customers with the same (x, t_x, T) have the same likelihood term: evaluate each once
    distinct, counts = np.unique(np.column_stack(data), axis=0, return_counts=True)
    xs, tx, tt = (np.ascontiguousarray(distinct[:, k]) for k in range(3))

    def objective(log_params: Floats) -> float:
        terms = _bgnbd_terms(_params(log_params), xs, tx, tt)
        value = -float(np.dot(counts, terms))
        return value if math.isfinite(value) else math.inf

    with_gradient = _with_log_gradient(objective, lambda params: counts @ _bgnbd_gradient(params, xs, tx, tt))

    starts = (
        [tuple(initial)] if quick else [tuple(initial), (0.5, scale, 0.5, 0.5), (2.0, scale / 10, 2.0, 5.0)]
    )
    gradient = with_gradient if analytic_gradient else None
    (r, alpha, a, b), ll = _fit(objective, starts, polish=polish and not quick, with_gradient=gradient)
    return BgNbdParams(float(r), float(alpha), float(a), float(b), ll)


def p_alive(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Floats:
    """P(still active at T | x, t_x, T) (Fader, Hardie & Lee 2008 note "Computing P(alive)").

    For ``x == 0`` it is exactly 1: in the BG/NBD a customer can only drop out right after a
    repeat purchase. One-time buyers therefore need the caller's own rule (e.g. a silence horizon).
    """
    r, alpha, a, b = _rab(params)
    xs, tx, tt = _summary(x, t_x, T)
    log_odds_dead = (
        np.log(a) - np.log(b + np.maximum(xs, 1) - 1) + (r + xs) * (np.log(alpha + tt) - np.log(alpha + tx))
    )
    return np.asarray(np.where(xs > 0, expit(-log_odds_dead), 1.0), dtype=np.float64)


def expected_purchases(
    params: BgNbdParams, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> Floats:
    """E[purchases in (T, T + t] | x, t_x, T], eq. 10 of the paper (needs ``a != 1``)."""
    r, alpha, a, b = _rab(params)
    xs, tx, tt = _summary(x, t_x, T)
    ts = np.asarray(t, dtype=np.float64)
    if np.any(ts < 0) or a == 1:
        raise ValueError("need a horizon t >= 0 periods and a != 1 (eq. 10 is singular there)")
    rx, horizon = r + xs, alpha + tt + ts
    tail = 1 - ((alpha + tt) / horizon) ** rx * hyp2f1(rx, b + xs, a + b + xs - 1, ts / horizon)
    return np.asarray((a + b + xs - 1) / (a - 1) * tail * p_alive(params, xs, tx, tt), dtype=np.float64)


def expected_next_purchase_in(
    params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, *, max_periods: float = 10_000.0
) -> Floats:
    """Periods after ``T`` until one purchase is expected (E[purchases] = 1), by bisection.

    ``inf`` when the expectation stays below 1 for ``max_periods`` (with ``a > 1`` it can
    stay below 1 forever: a likely-dead customer never gets there).
    """
    xs, tx, tt = _summary(x, t_x, T)
    lo, hi = np.zeros_like(xs), np.full_like(xs, max_periods)
    reached = expected_purchases(params, hi, xs, tx, tt) >= 1
    for _ in range(64):
        mid = (lo + hi) / 2
        up = expected_purchases(params, mid, xs, tx, tt) >= 1
        lo, hi = np.where(up, lo, mid), np.where(up, mid, hi)
    return np.asarray(np.where(reached, hi, np.inf), dtype=np.float64)


def _spend(frequency: ArrayLike, mean_spend: ArrayLike) -> tuple[Floats, Floats]:
    x, z = np.broadcast_arrays(np.asarray(frequency, np.float64), np.asarray(mean_spend, np.float64))
    if np.any(x < 0):
        raise ValueError("frequency is a count of repeat purchases: it must be >= 0")
    return x, z


def _gamma_gamma_terms(params: Sequence[float] | Floats, x: Floats, z: Floats) -> Floats:
    p, q, gamma = params
    px = p * x
    return np.asarray(
        gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma) + px * np.log(x)
        + (px - 1) * np.log(z) - (px + q) * np.log(gamma + x * z),
        dtype=np.float64,
    )  # fmt: skip


def _gamma_gamma_gradient(params: Sequence[float] | Floats, x: Floats, z: Floats) -> Floats:
    """Per-customer gradient of :func:`_gamma_gamma_terms` in ``(p, q, gamma)``, one row per customer."""
    p, q, gamma = params
    px = p * x
    common = digamma(px + q) - np.log(gamma + x * z)
    d_p = x * (common - digamma(px) + np.log(x) + np.log(z))
    d_q = common - digamma(q) + np.log(gamma)
    d_gamma = q / gamma - (px + q) / (gamma + x * z)
    return np.column_stack([d_p, d_q, d_gamma])


def gamma_gamma_log_likelihood(
    params: GammaGammaParams | Sequence[float], frequency: ArrayLike, mean_spend: ArrayLike
) -> float:
    """Total Gamma-Gamma log-likelihood of ``(p, q, gamma)`` over repeat customers."""
    values = (params.p, params.q, params.gamma) if isinstance(params, GammaGammaParams) else params
    return float(np.sum(_gamma_gamma_terms(values, *_spend(frequency, mean_spend))))


def fit_gamma_gamma(
    frequency: ArrayLike,
    mean_spend: ArrayLike,
    *,
    initial: Sequence[float] | None = None,
    polish: bool = True,
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters from repeat customers only.

    ``frequency`` is the number of repeat purchases ``x > 0`` and ``mean_spend`` the average
    value of those repeat purchases (the first purchase excluded), both per customer.
    ``initial``: a refit from the previous fit's ``(p, q, gamma)``, one L-BFGS-B run, no polish.
    """
    x, z = _spend(frequency, mean_spend)
    if np.any(x <= 0) or np.any(~(z > 0)):
        raise ValueError("fit Gamma-Gamma on repeat customers only: frequency > 0 and mean_spend > 0")

    def objective(log_params: Floats) -> float:
        value = -float(np.sum(_gamma_gamma_terms(_params(log_params), x, z)))
        return value if math.isfinite(value) else math.inf

    with_gradient = _with_log_gradient(
        objective, lambda params: _gamma_gamma_gradient(params, x, z).sum(axis=0)
    )

    scale = float(np.mean(z))
    if initial is not None:
        (p, q, gamma), ll = _fit(objective, [tuple(initial)], polish=False, with_gradient=with_gradient)
    else:
        starts = [(1.0, 1.0, 1.0), (2.0, 2.0, scale), (5.0, 5.0, scale)]
        (p, q, gamma), ll = _fit(objective, starts, polish=polish, with_gradient=with_gradient)
    return GammaGammaParams(float(p), float(q), float(gamma), ll)


def expected_average_spend(params: GammaGammaParams, frequency: ArrayLike, mean_spend: ArrayLike) -> Floats:
    """E[spend per purchase | x, mean spend]: a weighted mix of the population and own means.

    With ``frequency == 0`` ``mean_spend`` is ignored (may be nan) and the population mean
    ``p * gamma / (q - 1)`` is returned, which needs ``q > 1``.
    """
    x, z = _spend(frequency, mean_spend)
    own = np.where(x > 0, x * z, 0.0)
    return np.asarray(params.p * (params.gamma + own) / (params.p * x + params.q - 1), dtype=np.float64)


def clv(
    bgnbd: BgNbdParams,
    gg: GammaGammaParams,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    mean_spend: ArrayLike,
    *,
    horizon_periods: int,
    discount_per_period: float = 0.0,
) -> Floats:
    """Expected discounted revenue over the next ``horizon_periods`` periods; deliberately simple.

    ``sum_k (E[Y(k)] - E[Y(k-1)]) * E[spend] / (1 + d)**k`` for ``k = 1..horizon``: BG/NBD
    purchases per period, booked at the period's end, times the Gamma-Gamma expected spend
    (independent of the purchase count, as that model assumes). Revenue, not margin; nothing
    beyond the horizon.
    """
    xs, tx, tt = _summary(x, t_x, T)
    k = np.arange(horizon_periods + 1, dtype=np.float64).reshape(-1, *([1] * xs.ndim))
    per_period = np.diff(expected_purchases(bgnbd, k, xs, tx, tt), axis=0)
    discounted = np.tensordot((1 + discount_per_period) ** -k[1:].ravel(), per_period, axes=1)
    return np.asarray(discounted * expected_average_spend(gg, xs, mean_spend), dtype=np.float64)
