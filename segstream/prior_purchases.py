"""What each exposed household bought of its campaign's covered products before the campaign.

The Complete Journey's targeting plainly used it (78.8% of the treatment exposures had bought
a covered product in the 8 weeks before the start, 30.7% of the control ones), and a shop's
targeting system knows it when it picks its targets, so each exposure carries it as the
optional ``prior_*`` fields of the ``campaign-events`` contract
(:class:`~streams.campaign_contract.PriorPurchases`):

- ``prior_days``: the span the figures cover, in days up to the exposure: the
  :data:`PRIOR_LOOKBACK` (8 weeks, the control arm's lookback), shortened to where the
  transactions begin (campaign 27, which starts on 2017-02-08: 38 days);
- ``prior_covered_products``: distinct products the campaign's coupons cover (``coupons``) that
  the household bought in that span;
- ``prior_covered_spend``: its ``sales_value`` on them in that span (2 decimals).

**Strictly before the exposure**: a purchase at the exposure instant (the campaign's start,
00:00 UTC) or later never counts, so nothing the campaign could have caused enters a feature.
A campaign that starts before the transactions do (24, 25, 26) has no span: its exposures carry
no ``prior_*`` field (unknown, not "bought nothing"). Naive timestamps are taken as UTC, as in
:mod:`segstream.campaigns`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["PRIOR_COLUMNS", "PRIOR_LOOKBACK", "prior_purchases", "with_prior_purchases"]

PRIOR_COLUMNS = ["prior_days", "prior_covered_products", "prior_covered_spend"]
PRIOR_LOOKBACK = pd.Timedelta(weeks=8)
_DAY = np.timedelta64(1, "D").astype("timedelta64[ns]")


def prior_purchases(
    tables: Mapping[str, pd.DataFrame], exposures: pd.DataFrame, lookback: pd.Timedelta = PRIOR_LOOKBACK
) -> pd.DataFrame:
    """:data:`PRIOR_COLUMNS` for each row of ``exposures`` (``campaign_id`` and ``customer_id`` as
    str, ``occurred_at`` UTC), same index; NaN where the span is empty (module docstring).

    ``tables``: The Complete Journey's ``coupons`` and ``transactions``.

    >>> day = pd.Timestamp
    >>> tables = {
    ...     "coupons": pd.DataFrame({"campaign_id": [7, 7], "coupon_upc": [55, 55], "product_id": [900, 901]}),
    ...     "transactions": pd.DataFrame({
    ...         "household_id": [1, 1, 1, 2], "product_id": [900, 901, 5, 900], "sales_value": [1.5, 2.0, 9.0, 3.0],
    ...         "transaction_timestamp": [day("2017-02-20"), day("2017-02-28 23:59"), day("2017-02-21"),
    ...                                   day("2017-03-01 00:00")],  # household 2: at the start, not before
    ...     }),
    ... }
    >>> exposures = pd.DataFrame({"campaign_id": ["7", "7"], "customer_id": ["1", "2"],
    ...                           "occurred_at": [day("2017-03-01", tz="UTC")] * 2})
    >>> prior_purchases(tables, exposures).to_dict("records")  # the transactions begin 9 days before
    [{'prior_days': 9.0, 'prior_covered_products': 2.0, 'prior_covered_spend': 3.5}, {'prior_days': 9.0, 'prior_covered_products': 0.0, 'prior_covered_spend': 0.0}]
    """
    out = pd.DataFrame(np.nan, index=exposures.index, columns=PRIOR_COLUMNS)
    if exposures.empty:
        return out
    lines = tables["transactions"]
    at = lines["transaction_timestamp"].to_numpy(dtype="datetime64[ns]")
    first = at.min().astype("datetime64[D]").astype("datetime64[ns]")  # the day the transactions begin
    households = lines["household_id"].astype(str).to_numpy()
    products, sales = lines["product_id"].to_numpy(), lines["sales_value"].to_numpy()
    coupons = tables["coupons"]
    covered_by = coupons.groupby(coupons["campaign_id"].astype(str))["product_id"].unique()
    span = np.timedelta64(lookback.as_unit("ns"))
    starts = pd.to_datetime(exposures["occurred_at"], utc=True).dt.tz_localize(None).dt.as_unit("ns")
    keys = exposures["campaign_id"].astype(str) + "@" + starts.astype("int64").astype(str)
    for key, group in exposures.groupby(keys):
        campaign, at_ns = str(key).rsplit("@", 1)
        end = np.datetime64(int(at_ns), "ns")
        begin = max(end - span, first)
        if begin >= end:
            continue  # the campaign starts before the transactions: nothing known
        covered = covered_by.get(campaign, np.array([], dtype=np.int64))
        mine = np.flatnonzero((at >= begin) & (at < end))
        mine = mine[np.isin(products[mine], covered)]
        bought = pd.DataFrame(
            {"customer_id": households[mine], "product_id": products[mine], "spend": sales[mine]}
        ).groupby("customer_id")
        distinct, spend = bought["product_id"].nunique(), bought["spend"].sum()
        customers = group["customer_id"].astype(str)
        out.loc[group.index, "prior_days"] = float(np.ceil((end - begin) / _DAY))
        out.loc[group.index, "prior_covered_products"] = customers.map(distinct).fillna(0).to_numpy(float)
        out.loc[group.index, "prior_covered_spend"] = customers.map(spend).fillna(0).round(2).to_numpy(float)
    return out


def with_prior_purchases(events: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """``events`` (:mod:`segstream.campaigns` columns) plus :data:`PRIOR_COLUMNS` on exposures
    (NaN on responses and where nothing is known)."""
    exposed = events[events["type"] == "exposure"]
    prior = prior_purchases(tables, exposed)
    return events.join(prior).astype({c: float for c in PRIOR_COLUMNS})
