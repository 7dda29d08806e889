"""The batch RFM table segstream replaces: pandas over a full history.

This is the oracle the streaming state is tested against and the baseline of the
benchmark. Same definitions as the README's wire contract: a resent ``event_id`` counts
once, frequency counts purchases only, monetary sums purchases and refunds,
recency is whole days from the last purchase to ``as_of``, purchase_days counts
distinct UTC days with a purchase.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["RFM_COLUMNS", "rfm_table"]

RFM_COLUMNS = [
    "customer_id",
    "first_purchase_at",
    "last_purchase_at",
    "frequency",
    "purchase_days",
    "monetary",
    "monetary_cents",
    "refunds",
    "recency_days",
]


def rfm_table(history: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per customer, sorted by ``customer_id``; ``as_of`` defaults to the latest event."""
    events = history.drop_duplicates("event_id", keep="first")
    cents = (events["amount"] * 100).round().astype("int64")
    is_purchase = events["type"] == "purchase"
    purchase_time = events["occurred_at"].where(is_purchase)
    frame = pd.DataFrame(
        {
            "customer_id": events["customer_id"],
            "cents": cents,
            "is_purchase": is_purchase.astype("int64"),
            "is_refund": (~is_purchase).astype("int64"),
            "purchase_time": purchase_time,
            "purchase_day": (purchase_time - pd.Timestamp(0, tz="UTC")).dt.days,
        }
    )
    table = frame.groupby("customer_id", sort=True).agg(
        first_purchase_at=("purchase_time", "min"),
        last_purchase_at=("purchase_time", "max"),
        frequency=("is_purchase", "sum"),
        monetary_cents=("cents", "sum"),
        refunds=("is_refund", "sum"),
        purchase_days=("purchase_day", "nunique"),
    )
    as_of = events["occurred_at"].max() if as_of is None else as_of
    table["recency_days"] = (as_of - table["last_purchase_at"]).dt.days.astype("Int64")
    table["monetary"] = table["monetary_cents"] / 100
    return table.reset_index()[RFM_COLUMNS]
