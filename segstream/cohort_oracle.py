"""The cohort table computed by pandas straight from the events: the oracle the live table must equal.

Written independently of ``state/analytics/cohorts.py`` (no shared code, whole-frame pandas operations):
the live path folds per-customer monthly counters exactly once and builds the table when
asked; this takes the distinct events (resends count once) and groups them. Definitions are
the README's ("Cohorts"): cohort = UTC month of the first purchase, period = months since, active
= at least one purchase in the month, revenue = net money (refunds subtract), every cohort run to
the last month in which a buyer has a counted event (a purchase, or a refund of non-zero amount).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pandas as pd

__all__ = ["CELL_COLUMNS", "cohort_mismatches", "oracle_cohorts"]

CELL_COLUMNS = ["cohort", "period", "customers", "active", "retention", "revenue_cents"]
NONE = "(none)"


def _months(stamps: pd.Series) -> pd.Series:
    utc = pd.to_datetime(stamps, utc=True)
    return utc.dt.year * 12 + utc.dt.month - 1


def _leading_categories(events: pd.DataFrame) -> pd.Series:
    """Per purchase (indexed like ``events``): its items' category with the most spend, ties alphabetical."""
    lines = events[["items"]].explode("items").dropna()
    if lines.empty:
        return pd.Series(np.nan, index=events.index, dtype=object)
    table = pd.DataFrame(
        {
            "category": [line.get("category") for line in lines["items"]],
            "spend": [float(line["quantity"]) * float(line["unit_price"]) for line in lines["items"]],
        },
        index=lines.index,
    ).dropna(subset=["category"])
    spend = table.groupby([table.index, "category"])["spend"].sum().reset_index()
    spend.columns = ["row", "category", "spend"]
    best = spend.sort_values(["row", "spend", "category"], ascending=[True, False, True]).drop_duplicates(
        "row"
    )
    return best.set_index("row")["category"].reindex(events.index)


def _groups(purchases: pd.DataFrame, cohort: pd.Series, by: str) -> pd.Series:
    """Each buyer's acquisition group: the value of most of their cohort-month purchases."""
    first_month = purchases[purchases["month"] == purchases["customer_id"].map(cohort)]
    values = first_month["channel"] if by == "channel" else _leading_categories(first_month)
    counted = pd.DataFrame({"customer_id": first_month["customer_id"], "value": values}).dropna()
    counts = counted.groupby(["customer_id", "value"]).size().reset_index(name="n")
    best = counts.sort_values(["customer_id", "n", "value"], ascending=[True, False, True])
    chosen = best.drop_duplicates("customer_id").set_index("customer_id")["value"]
    return chosen.reindex(cohort.index).fillna(NONE).astype(str)


def oracle_cohorts(history: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """The cohort table of a history frame (``segstream.sources``), one row per group, cohort, period.

    Columns: ``[by], cohort, period, customers, active, retention, revenue_cents``.
    ``history`` may carry ``channel`` and ``items`` columns for the splits.
    """
    events = history.drop_duplicates(["customer_id", "event_id"]).copy()
    events["customer_id"] = events["customer_id"].astype(str)
    events["month"] = _months(events["occurred_at"])
    events["cents"] = (events["amount"].astype(float) * 100).round().astype("int64")
    if by == "channel" and "channel" not in events:
        events["channel"] = np.nan
    if by == "category" and "items" not in events:
        events["items"] = None
    purchases = events[events["type"] == "purchase"]
    cohort = purchases.groupby("customer_id")["month"].min()
    counted = events[
        events["customer_id"].isin(cohort.index) & ((events["type"] == "purchase") | (events["cents"] != 0))
    ]
    if counted.empty:
        return pd.DataFrame(columns=([by] if by else []) + CELL_COLUMNS)
    horizon = int(counted["month"].max())
    group = _groups(purchases, cohort, by) if by else pd.Series("", index=cohort.index)
    sizes = pd.DataFrame({"group": group, "start": cohort}).groupby(["group", "start"]).size()
    cells = []
    for key, n in sizes.items():
        g, s = cast(tuple[str, int], key)
        cells += [(g, s, p, n) for p in range(horizon - int(s) + 1)]
    grid = pd.DataFrame(cells, columns=["group", "start", "period", "customers"])
    tagged = counted.assign(group=counted["customer_id"].map(group), start=counted["customer_id"].map(cohort))
    tagged["period"] = tagged["month"] - tagged["start"]
    tagged = tagged[tagged["period"] >= 0]
    bought = tagged[tagged["type"] == "purchase"]
    active = bought.groupby(["group", "start", "period"])["customer_id"].nunique().rename("active")
    revenue = tagged.groupby(["group", "start", "period"])["cents"].sum().rename("revenue_cents")
    table = grid.join(active, on=["group", "start", "period"]).join(revenue, on=["group", "start", "period"])
    table[["active", "revenue_cents"]] = table[["active", "revenue_cents"]].fillna(0).astype("int64")
    table["retention"] = table["active"] / table["customers"]
    table["cohort"] = [f"{s // 12:04d}-{s % 12 + 1:02d}" for s in table["start"]]
    table = table.sort_values(["group", "start", "period"]).reset_index(drop=True)
    if by:
        table[by] = table["group"]
    return table[([by] if by else []) + CELL_COLUMNS]


def cohort_mismatches(live: pd.DataFrame, expected: pd.DataFrame, by: str | None = None) -> list[str]:
    """Every cell where ``live`` (the CLI's columns, revenue in money) differs from the oracle's; [] if none.

    Keys (group, cohort, period) must match row for row; counts and cents exactly, retention
    to 1e-12.
    """
    keys = ([by] if by else []) + ["cohort", "period"]
    problems: list[str] = []
    if len(live) != len(expected):
        problems.append(f"{len(live)} rows live, {len(expected)} in the oracle")
    left = live.assign(revenue_cents=(live["revenue"].astype(float) * 100).round().astype("int64"))
    merged = left.merge(expected, on=keys, how="outer", suffixes=("_live", "_oracle"), indicator=True)
    for _, row in merged[merged["_merge"] != "both"].iterrows():
        problems.append(f"{_key(row, keys)} only in {'live' if row['_merge'] == 'left_only' else 'oracle'}")
    both = merged[merged["_merge"] == "both"]
    for column in ("customers", "active", "revenue_cents", "retention"):
        a, b = both[f"{column}_live"].astype(float), both[f"{column}_oracle"].astype(float)
        tolerance = 1e-12 if column == "retention" else 0.0
        for _, row in both[(a - b).abs() > tolerance].iterrows():
            problems.append(
                f"{_key(row, keys)} {column}: live {row[f'{column}_live']}, oracle {row[f'{column}_oracle']}"
            )
    return problems


def _key(row: Any, keys: list[str]) -> str:
    return "/".join(str(row[k]) for k in keys)
