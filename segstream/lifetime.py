"""BG/NBD over the live state: ``segstream fit`` and the prediction columns of the export.

BTYD's own variables, in weeks (the CDNOW papers' period): ``x`` repeat purchase days
(``purchase_days - 1``: same-day purchases merged), ``t_x`` first to last purchase day,
``T`` first purchase day to the as-of time (the event-time watermark).

One-time buyers: plain BG/NBD lets a customer drop out only after a repeat purchase, so
it calls every one-time buyer alive (P = 1) however long the silence. segstream's rule
for ``x = 0``: the MBG/NBD form, which also allows the drop-out after the first purchase,
with the fitted BG/NBD parameters: ``P(alive) = 1 / (1 + (a / b) * ((alpha + T) / alpha) ** r)``;
their expected purchases are the model's scaled by that probability, and they get no
expected next order date. Nor does anyone whose next expected order lies beyond ten years.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import pandas as pd

from state.btyd import BgNbdParams, expected_next_purchase_in, expected_purchases, fit_bgnbd, p_alive
from state.rfm import DAY_MS, CustomerState, purchase_day
from state.store import CustomerStore

__all__ = [
    "MODEL_NAME",
    "PREDICTION_COLUMNS",
    "WEEK_MS",
    "btyd_summary",
    "fit_and_save",
    "fit_states",
    "params_from_json",
    "params_to_json",
    "predictions",
    "with_predictions",
]

MODEL_NAME = "bgnbd"
WEEK_MS = 7 * DAY_MS
HORIZON_WEEKS = 90 / 7
NEXT_ORDER_WITHIN_WEEKS = 520.0  # no expected next order date beyond ten years
PREDICTION_COLUMNS = ["p_alive", "expected_purchases_90d", "expected_next_order_at"]


def btyd_summary(states: Sequence[CustomerState], as_of_ms: int) -> pd.DataFrame:
    """``x, t_x, T`` (weeks) per customer with a purchase, indexed by customer_id."""
    buyers = [s for s in states if s.first_purchase_ms is not None and s.last_purchase_ms is not None]
    first = np.array([purchase_day(s.first_purchase_ms or 0) for s in buyers], dtype=np.int64)
    last = np.array([purchase_day(s.last_purchase_ms or 0) for s in buyers], dtype=np.int64)
    return pd.DataFrame(
        {
            "x": np.array([s.purchase_days - 1 for s in buyers], dtype=np.float64),
            "t_x": (last - first) * DAY_MS / WEEK_MS,
            "T": (as_of_ms - first * DAY_MS) / WEEK_MS,
        },
        index=pd.Index([s.customer_id for s in buyers], name="customer_id"),
    )


def fit_states(states: Sequence[CustomerState], as_of_ms: int) -> BgNbdParams:
    """Maximum-likelihood BG/NBD on the live population."""
    summary = btyd_summary(states, as_of_ms)
    if len(summary) < 10:
        raise ValueError(f"BG/NBD needs more customers with a purchase than {len(summary)}")
    return fit_bgnbd(summary["x"].to_numpy(), summary["t_x"].to_numpy(), summary["T"].to_numpy())


async def fit_and_save(
    store: CustomerStore, states: Sequence[CustomerState], as_of_ms: int
) -> tuple[BgNbdParams, int]:
    """Fit on ``states`` and store the result as a new model version; return both."""
    params = fit_states(states, as_of_ms)
    version = await store.save_model(MODEL_NAME, params_to_json(params, as_of_ms, len(states)))
    return params, version


def params_to_json(params: BgNbdParams, as_of_ms: int, customers: int) -> str:
    return json.dumps({**asdict(params), "as_of_ms": as_of_ms, "customers": customers, "period": "week"})


def params_from_json(text: str) -> BgNbdParams:
    raw = json.loads(text)
    return BgNbdParams(raw["r"], raw["alpha"], raw["a"], raw["b"], raw["log_likelihood"])


def one_time_p_alive(params: BgNbdParams, T: np.ndarray) -> np.ndarray:
    """P(alive) of a one-time buyer first seen ``T`` weeks ago (the rule in the module docstring)."""
    return np.asarray(1 / (1 + (params.a / params.b) * ((params.alpha + T) / params.alpha) ** params.r))


def predictions(summary: pd.DataFrame, params: BgNbdParams, as_of_ms: int) -> pd.DataFrame:
    """``p_alive, expected_purchases_90d, expected_next_order_at`` per customer of ``summary``."""
    x, t_x, T = (summary[c].to_numpy() for c in ("x", "t_x", "T"))
    one_time = x == 0
    alive = np.where(one_time, one_time_p_alive(params, T), p_alive(params, x, t_x, T))
    scale = np.where(one_time, alive, 1.0)
    upcoming = expected_purchases(params, HORIZON_WEEKS, x, t_x, T) * scale
    weeks = expected_next_purchase_in(params, x, t_x, T, max_periods=NEXT_ORDER_WITHIN_WEEKS)
    next_ms = np.where(np.isfinite(weeks) & ~one_time, as_of_ms + weeks * WEEK_MS, np.nan)
    return pd.DataFrame(
        {
            "p_alive": alive,
            "expected_purchases_90d": upcoming,
            "expected_next_order_at": pd.to_datetime(
                pd.Series(next_ms, index=summary.index), unit="ms", utc=True
            ),
        },
        index=summary.index,
    )


def with_predictions(
    frame: pd.DataFrame, states: Sequence[CustomerState], params: BgNbdParams | None, as_of_ms: int | None
) -> pd.DataFrame:
    """``frame`` (one row per customer) with the prediction columns; empty where no model is fitted."""
    if params is None or as_of_ms is None:
        extra = pd.DataFrame(index=frame.index, columns=PREDICTION_COLUMNS, dtype="float64")
        extra["expected_next_order_at"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ms, UTC]")
        return pd.concat([frame, extra], axis=1)
    scored = predictions(btyd_summary(states, as_of_ms), params, as_of_ms)
    return frame.join(scored, on="customer_id")
