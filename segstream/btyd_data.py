"""History frames to BTYD summaries: per customer ``x``, ``t_x``, ``T`` and repeat spend.

BTYD counts purchase *days*: purchases by one customer on one UTC day merge into one
transaction (their amounts add up), as in Fader, Hardie & Lee (2005) on CDNOW. Only rows
of type ``"purchase"`` count; a resent ``event_id`` (when the column exists) counts once.

>>> history = pd.DataFrame(
...     {
...         "customer_id": ["a", "a", "a", "b", "a"],
...         "occurred_at": pd.to_datetime(
...             ["2024-01-01", "2024-01-08 09:00", "2024-01-08 17:00", "2024-01-03", "2024-01-15"],
...             format="ISO8601",
...             utc=True,
...         ),
...         "amount": [10.0, 5.0, 7.0, 3.0, 8.0],
...         "type": "purchase",
...     }
... )
>>> summary = calibration_summary(history, calibration_end=pd.Timestamp("2024-01-15", tz="UTC"))
>>> summary.round(3).to_dict("index")  # a: 3 purchase days (two buys on 8 Jan merged)
{'a': {'x': 2, 't_x': 2.0, 'T': 2.0, 'mean_spend': 10.0}, 'b': {'x': 0, 't_x': 0.0, 'T': 1.714, 'mean_spend': nan}}
"""

from __future__ import annotations

import pandas as pd

__all__ = ["SUMMARY_COLUMNS", "WEEK", "calibration_summary", "holdout_purchase_days"]

SUMMARY_COLUMNS = ["x", "t_x", "T", "mean_spend"]
WEEK = pd.Timedelta(weeks=1)  # the period of the CDNOW papers


def _purchase_days(history: pd.DataFrame, until: pd.Timestamp) -> pd.DataFrame:
    """One row per (customer, UTC day) with a purchase at or before ``until``: first time, spend."""
    events = history.drop_duplicates("event_id") if "event_id" in history else history
    bought = events[(events["type"] == "purchase") & (events["occurred_at"] <= until)]
    days = bought.assign(day=bought["occurred_at"].dt.floor("D"))
    return (
        days.groupby(["customer_id", "day"], sort=True)
        .agg(first_at=("occurred_at", "min"), spend=("amount", "sum"))
        .reset_index()
    )


def calibration_summary(
    history: pd.DataFrame,
    *,
    calibration_end: pd.Timestamp,
    period: pd.Timedelta = WEEK,
    start: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Per customer (index ``customer_id``, sorted): ``x``, ``t_x``, ``T``, ``mean_spend``.

    From purchases with ``occurred_at <= calibration_end``: ``x`` = distinct purchase days
    minus 1; ``t_x`` = last minus first purchase day and ``T`` = ``calibration_end`` minus
    first purchase day, in ``period`` units (days start at 00:00 UTC, so with day-stamped
    data ``calibration_end`` = 00:00 of the last calibration day makes ``T`` a whole number
    of days, as in the paper's CDNOW figures); ``mean_spend`` = mean daily spend over the
    repeat days (first day excluded, the Gamma-Gamma input), nan when ``x == 0``.

    ``start`` keeps only customers whose first purchase is at or after it (an acquisition
    cohort): BTYD needs each customer's true first purchase, so earlier buyers are dropped,
    not truncated.
    """
    days = _purchase_days(history, calibration_end)
    by_customer = days.groupby("customer_id", sort=True)
    first = by_customer["day"].min()
    summary = pd.DataFrame(
        {
            "x": by_customer.size() - 1,
            "t_x": (by_customer["day"].max() - first).dt.total_seconds() / period.total_seconds(),
            "T": (calibration_end - first).dt.total_seconds() / period.total_seconds(),
        }
    )
    repeat = days[days["day"] > by_customer["day"].transform("min")]
    summary["mean_spend"] = repeat.groupby("customer_id")["spend"].mean().reindex(summary.index)
    if start is not None:
        summary = summary[first >= start]
    summary.index.name = "customer_id"
    return summary[SUMMARY_COLUMNS]


def holdout_purchase_days(
    history: pd.DataFrame, *, calibration_end: pd.Timestamp, holdout_end: pd.Timestamp
) -> pd.Series:
    """Purchase days per customer after ``calibration_end`` up to ``holdout_end`` (inclusive).

    A day counts in the holdout when its first purchase is after ``calibration_end``, so a
    day already counted in calibration is never counted twice. Customers without holdout
    purchases are absent: ``reindex(summary.index, fill_value=0)`` to line up.
    """
    days = _purchase_days(history, holdout_end)
    later = days[days["first_at"] > calibration_end]
    return later.groupby("customer_id", sort=True).size().rename("holdout_days")
