"""Per-customer predictions from the evaluated population, one vector operation per figure.

**Lifetime model.** BG/NBD (will they buy again, how often) and Gamma-Gamma (how much per
purchase), refitted by the evaluator on a schedule. Its variables, in weeks (the CDNOW papers'
period), from the population columns: ``x = purchase_days - 1`` (repeat purchase days: same-day
purchases merged), ``t_x`` first to last purchase day, ``T`` first purchase day to the as-of
instant. Spend per purchase day (net spend / purchase days) stands in for the Gamma-Gamma mean
spend, fitted on repeat customers with a positive mean.

**One-time buyers.** Plain BG/NBD lets a customer drop out only after a repeat purchase, so it
calls every one-time buyer alive (P = 1) however long the silence. segstream's rule for
``x = 0``: the MBG/NBD form, which also allows the drop-out after the first purchase, with the
fitted BG/NBD parameters, ``P(alive) = 1 / (1 + (a / b) * ((alpha + T) / alpha) ** r)``; their
expected purchases are the model's scaled by that probability, and they get no expected next
order date. Nor does anyone whose next expected order lies beyond ten years.

>>> model = LifetimeModel(BgNbdParams(0.243, 4.414, 0.793, 2.426), None, version=1, fitted_at_ms=0, customers=3)
>>> cols = {"first_ms": np.array([0, 0]), "last_ms": np.array([0, 30 * WEEK_MS]),
...         "purchase_days": np.array([1, 3]), "monetary_cents": np.array([1000, 9000])}
>>> alive = lifetime_scores(model, cols, 39 * WEEK_MS)["p_alive"]
>>> alive.round(3).tolist()
[0.637, 0.72]
>>> LifetimeModel.from_json(model.to_json()) == model
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from state.campaigns.descriptors import descriptor_features
from state.campaigns.response import response_features
from state.customer.rfm import DAY_MS
from state.evaluator.read_model import LifetimeParams, Summary
from state.models.alerts import band_name
from state.models.btyd import (
    BgNbdParams,
    GammaGammaParams,
    clv,
    expected_next_purchase_in,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    p_alive,
)
from state.models.churn_features import churn_matrix
from state.models.online_logistic import score_with

__all__ = [
    "CLV_WEEKS",
    "HORIZON_WEEKS",
    "WEEK_MS",
    "LifetimeModel",
    "alive_and_expected",
    "btyd_inputs",
    "fit_lifetime",
    "lifetime_scores",
    "one_time_p_alive",
    "predictions_of",
    "spend_per_day",
]

FloatArray = npt.NDArray[np.float64]
Columns = Mapping[str, npt.NDArray[np.int64]]  # population columns (see state.segments.population)

WEEK_MS = 7 * DAY_MS
HORIZON_WEEKS = 90 / 7  # expected purchases "in the next 90 days"
CLV_WEEKS = 52  # predicted CLV: expected revenue over the next year, undiscounted
NEXT_ORDER_WITHIN_WEEKS = 520.0  # no expected next order date beyond ten years
MIN_CUSTOMERS = 100  # fewer buyers than this: no fit
MIN_REPEAT = 10  # fewer repeat customers than this: no BG/NBD (and no Gamma-Gamma) fit
MIN_HISTORY_WEEKS = 4.0  # nor before the oldest customer has this much history
PLAUSIBLE = (1e-8, 1e12)  # a fitted parameter outside this range: the data cannot identify the model


@dataclass(frozen=True)
class LifetimeModel:
    """One fitted version of the lifetime model (Gamma-Gamma is None when it could not be fitted)."""

    bgnbd: BgNbdParams
    spend: GammaGammaParams | None
    version: int
    fitted_at_ms: int
    customers: int

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "fitted_at_ms": self.fitted_at_ms,
            "customers": self.customers,
            "period": "week",
            "bgnbd": asdict(self.bgnbd),
            "gamma_gamma": None if self.spend is None else asdict(self.spend),
        }

    @classmethod
    def from_params(cls, params: LifetimeParams) -> LifetimeModel:
        """The model a summary's ``lifetime`` part describes (``state.evaluator.read_model``)."""
        raw: dict[str, object] = msgspec.to_builtins(params)
        return cls.from_json(raw)

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> LifetimeModel:
        bg, gg = raw["bgnbd"], raw["gamma_gamma"]
        assert isinstance(bg, dict)
        return cls(
            BgNbdParams(**{k: float(v) for k, v in bg.items()}),
            None if not isinstance(gg, dict) else GammaGammaParams(**{k: float(v) for k, v in gg.items()}),
            version=int(str(raw["version"])),
            fitted_at_ms=int(str(raw["fitted_at_ms"])),
            customers=int(str(raw["customers"])),
        )

    def describe(self) -> str:
        p = self.bgnbd
        text = f"BG/NBD v{self.version}: r={p.r:.3f} alpha={p.alpha:.3f} a={p.a:.3f} b={p.b:.3f}"
        if self.spend is not None:
            g = self.spend
            text += f"; Gamma-Gamma p={g.p:.3f} q={g.q:.3f} gamma={g.gamma:.3f}"
        return text


def btyd_inputs(cols: Columns, as_of_ms: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(x, t_x, T)`` in weeks of buyers' columns, day-granular (``T`` from the first day's midnight)."""
    first_day = cols["first_ms"] // DAY_MS
    x = np.maximum(cols["purchase_days"] - 1, 0).astype(np.float64)
    t_x = (cols["last_ms"] // DAY_MS - first_day) * (DAY_MS / WEEK_MS)
    T = np.maximum((as_of_ms - first_day * DAY_MS) / WEEK_MS, t_x)
    return x, t_x.astype(np.float64), T.astype(np.float64)


def spend_per_day(cols: Columns) -> FloatArray:
    """Net spend per purchase day, in currency units (the Gamma-Gamma mean spend)."""
    return np.asarray(cols["monetary_cents"] / 100 / np.maximum(cols["purchase_days"], 1), dtype=np.float64)


def one_time_p_alive(params: BgNbdParams, T: FloatArray) -> FloatArray:
    """P(alive) of a one-time buyer first seen ``T`` weeks ago (the rule in the module docstring)."""
    return np.asarray(1 / (1 + (params.a / params.b) * ((params.alpha + T) / params.alpha) ** params.r))


def fit_lifetime(
    cols: Columns, as_of_ms: int, previous: LifetimeModel | None, *, version: int, polish: bool = True
) -> LifetimeModel | None:
    """Fit both models on buyers' columns at ``as_of_ms``; None if there are too few customers.

    A refit starts from the previous version's parameters (one L-BFGS-B run, no polish), so the
    scheduled refit costs a fraction of a cold fit; the first fit is the multi-start one, with a
    Nelder-Mead polish unless ``polish=False`` (the evaluator's schedule: seconds saved per fit).
    """
    x, t_x, T = btyd_inputs(cols, as_of_ms)
    if x.size < MIN_CUSTOMERS or int((x > 0).sum()) < MIN_REPEAT or T.max() < MIN_HISTORY_WEEKS:
        return None
    if previous is None:
        bgnbd = fit_bgnbd(x, t_x, T, polish=polish)
    else:
        old = previous.bgnbd
        bgnbd = fit_bgnbd(x, t_x, T, initial=(old.r, old.alpha, old.a, old.b), quick=True)
    if not _plausible(bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b):
        return None
    mean = spend_per_day(cols)
    repeat = (x > 0) & (mean > 0)
    spend: GammaGammaParams | None = None
    old_spend = previous.spend if previous is not None else None
    initial = None if old_spend is None else (old_spend.p, old_spend.q, old_spend.gamma)
    try:
        spend = fit_gamma_gamma(x[repeat], mean[repeat], initial=initial, polish=polish)
    except ValueError:
        spend = None
    if spend is not None and (spend.q <= 1 or not _plausible(spend.p, spend.q, spend.gamma)):
        spend = None  # q <= 1: the population mean spend is infinite, unusable
    return LifetimeModel(bgnbd, spend, version=version, fitted_at_ms=as_of_ms, customers=int(x.size))


def _plausible(*params: float) -> bool:
    return all(math.isfinite(p) and PLAUSIBLE[0] <= p <= PLAUSIBLE[1] for p in params)


def alive_and_expected(model: LifetimeModel, cols: Columns, as_of_ms: int) -> tuple[FloatArray, FloatArray]:
    """P(alive) and expected purchases in the next 90 days (what the evaluator needs every instant)."""
    params = model.bgnbd
    x, t_x, T = btyd_inputs(cols, as_of_ms)
    one_time = x == 0
    alive = np.where(one_time, one_time_p_alive(params, T), p_alive(params, x, t_x, T))
    if math.isclose(params.a, 1.0):
        return alive, np.full_like(alive, np.nan)
    expected = expected_purchases(params, HORIZON_WEEKS, x, t_x, T) * np.where(one_time, alive, 1.0)
    return alive, np.asarray(expected, dtype=np.float64)


def lifetime_scores(model: LifetimeModel, cols: Columns, as_of_ms: int) -> dict[str, FloatArray]:
    """Every lifetime figure of buyers' columns as of ``as_of_ms``.

    ``p_alive``, ``expected_purchases_90d``, ``expected_next_order_ms`` (epoch ms, nan when
    there is none) and ``clv`` (nan without a Gamma-Gamma fit; 0 for a non-positive net spend).
    """
    x, t_x, T = btyd_inputs(cols, as_of_ms)
    alive, expected = alive_and_expected(model, cols, as_of_ms)
    one_time = x == 0
    weeks = expected_next_purchase_in(model.bgnbd, x, t_x, T, max_periods=NEXT_ORDER_WITHIN_WEEKS)
    next_ms = np.where(np.isfinite(weeks) & ~one_time, as_of_ms + weeks * WEEK_MS, np.nan)
    value = np.full_like(alive, np.nan)
    if model.spend is not None:
        mean = spend_per_day(cols)
        own = np.where(mean > 0, mean, np.nan)
        value = clv(model.bgnbd, model.spend, x, t_x, T, own, horizon_periods=CLV_WEEKS)
        value = np.where(one_time, value * alive, value)  # the one-time rule, as for expected purchases
        value = np.where(mean > 0, value, 0.0)
    return {
        "p_alive": alive,
        "expected_purchases_90d": expected,
        "expected_next_order_ms": np.asarray(next_ms, dtype=np.float64),
        "clv": np.asarray(value, dtype=np.float64),
    }


def predictions_of(records: Sequence[Mapping[str, Any]], summary: Summary) -> list[dict[str, Any] | None]:
    """Every prediction of the evaluator's saved ``records`` as of its saved ``summary``.

    What ``GET /customers/{id}`` and ``segstream export customers`` show: the lifetime model and
    churn scorer versions the evaluator saved, applied in closed form at its clock, so every
    reader gets the numbers the evaluator itself had at that instant. None for a customer with
    no purchase or profile yet, or before the lifetime model's first fit; a churn probability
    of None before the churn model learned from its first labelled batch. Response propensity
    and uplift (``state.campaigns.uplift``: treatment arm minus control arm) are for the reference campaign
    (the last one an exposure described), None until their models learned a window.
    """
    out: list[dict[str, Any] | None] = [None] * len(records)
    lifetime, scorer = summary.lifetime, summary.churn.scorer
    at = [i for i, r in enumerate(records) if r["frequency"] > 0 and r.get("profile")]
    if lifetime is None or not at:
        return out
    model, as_of = LifetimeModel.from_params(lifetime), summary.as_of_ms
    rows = [records[i] for i in at]
    cols = {
        name: np.array([int(r[name]) for r in rows], dtype=np.int64)
        for name in ("first_ms", "last_ms", "purchase_days", "monetary_cents", "frequency", "band")
    }
    for k, name in enumerate(("r", "f", "m")):
        cols[name] = np.array([int(r["profile"][k]) for r in rows], dtype=np.int64)
    scores = lifetime_scores(model, cols, as_of)
    probability = np.full(len(rows), np.nan)
    propensity = np.full(len(rows), np.nan)
    uplift = np.full(len(rows), np.nan)
    response = summary.response.scorer
    if scorer is not None and scorer.version > 0:
        segments = [n.removeprefix("segment=") for n in scorer.names if n.startswith("segment=")]
        segment = np.array([segments.index(r["profile"][3]) for r in rows], dtype=np.int64)
        alive, expected = scores["p_alive"], scores["expected_purchases_90d"]
        x = churn_matrix(cols, as_of, alive, expected, segment, len(segments))
        probability = score_with(scorer.to_json(), x)
        if response is not None and response.version > 0:
            treated = np.ones(len(rows), dtype=np.bool_)
            reference = summary.response.reference_campaign
            d = np.repeat(descriptor_features([reference]), len(rows), axis=0)
            xr = response_features(
                cols, as_of, alive, expected, probability, segment, len(segments), treated, d
            )
            propensity = score_with(response.to_json(), xr)
            arms = summary.uplift
            if arms is not None and arms.version > 0:
                uplift = score_with(arms.treatment.scorer.to_json(), xr) - score_with(
                    arms.control.scorer.to_json(), xr
                )
    for j, i in enumerate(at):
        next_ms = scores["expected_next_order_ms"][j]
        out[i] = {
            "p_alive": float(scores["p_alive"][j]),
            "expected_purchases_90d": float(scores["expected_purchases_90d"][j]),
            "expected_next_order_ms": None if np.isnan(next_ms) else int(next_ms),
            "clv": None if np.isnan(scores["clv"][j]) else float(scores["clv"][j]),
            "churn_probability": None if np.isnan(probability[j]) else float(probability[j]),
            "churn_band": band_name(int(cols["band"][j])),
            "response_propensity": None if np.isnan(propensity[j]) else float(propensity[j]),
            "response_uplift": None if np.isnan(uplift[j]) else float(uplift[j]),
            "lifetime_model_version": model.version,
            "churn_model_version": scorer.version if scorer is not None else 0,
            "response_model_version": response.version if response is not None else 0,
        }
    return out
