"""The Complete Journey's campaign descriptors, carried on each exposure (``campaign-events``).

Per campaign (``campaign_descriptions``, ``coupons``, ``coupon_redemptions``, ``transactions``):

- ``campaign_type``: as listed ("Type A", "Type B", "Type C");
- ``campaign_days``: end date minus start date plus one (both days count);
- ``coupons``: distinct ``coupon_upc`` of the campaign; ``covered_products``: distinct products
  those coupons cover;
- ``discount_depth``: the data has no coupon face values, so it is **derived**: each redemption
  (household, coupon, day) is matched to that household's transaction lines on that day of a
  product the coupon covers with a coupon discount; a line's depth is ``(coupon_disc +
  coupon_match_disc) / (sales_value + retail_disc + coupon_disc + coupon_match_disc)`` (coupon
  discount over shelf price) and the campaign's depth is the median over its matched lines.
  Campaign 24 has no matched line: no depth (the field is left out). Caveat: redemptions happen
  during the campaign, so this stands in for a figure the campaign's planner knows at its start
  (the coupon's value); it is not something a model could observe at the start of a campaign
  whose coupons nobody has redeemed yet.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

__all__ = ["DESCRIPTOR_COLUMNS", "campaign_descriptors"]

DESCRIPTOR_COLUMNS = ["campaign_type", "campaign_days", "coupons", "covered_products", "discount_depth"]


def campaign_descriptors(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per campaign (``campaign_id`` as str) with :data:`DESCRIPTOR_COLUMNS` (module docstring).

    ``coupon_redemptions`` and ``transactions`` are optional: without them no discount depth.

    >>> tables = {
    ...     "campaign_descriptions": pd.DataFrame({"campaign_id": [7], "campaign_type": ["Type B"],
    ...         "start_date": [pd.Timestamp("2017-03-01")], "end_date": [pd.Timestamp("2017-03-10")]}),
    ...     "coupons": pd.DataFrame({"campaign_id": [7, 7], "coupon_upc": [55, 55], "product_id": [900, 901]}),
    ...     "coupon_redemptions": pd.DataFrame({"household_id": [1], "coupon_upc": [55], "campaign_id": [7],
    ...         "redemption_date": [pd.Timestamp("2017-03-02")]}),
    ...     "transactions": pd.DataFrame({"household_id": [1], "product_id": [900], "sales_value": [1.5],
    ...         "retail_disc": [0.0], "coupon_disc": [0.5], "coupon_match_disc": [0.0],
    ...         "transaction_timestamp": [pd.Timestamp("2017-03-02 10:00")]}),
    ... }
    >>> campaign_descriptors(tables).to_dict("records")
    [{'campaign_id': '7', 'campaign_type': 'Type B', 'campaign_days': 10, 'coupons': 1, 'covered_products': 2, 'discount_depth': 0.25}]
    """
    d = tables["campaign_descriptions"]
    coupons = tables["coupons"]
    counts = coupons.groupby("campaign_id").agg(
        coupons=("coupon_upc", "nunique"), covered_products=("product_id", "nunique")
    )
    out = pd.DataFrame(
        {
            "campaign_id": d["campaign_id"].to_numpy(),
            "campaign_type": d["campaign_type"].astype(str).to_numpy(),
            "campaign_days": (
                (pd.to_datetime(d["end_date"]) - pd.to_datetime(d["start_date"])).dt.days + 1
            ).to_numpy(),
        }
    ).merge(counts, left_on="campaign_id", right_index=True, how="left")
    out[["coupons", "covered_products"]] = out[["coupons", "covered_products"]].fillna(0).astype("int64")
    out["discount_depth"] = out["campaign_id"].map(_depths(tables)).astype(float)
    out["campaign_id"] = out["campaign_id"].astype(str)
    return out[["campaign_id", *DESCRIPTOR_COLUMNS]].reset_index(drop=True)


def _depths(tables: Mapping[str, pd.DataFrame]) -> pd.Series:
    """Median derived discount depth per campaign (module docstring); empty without the tables."""
    if "coupon_redemptions" not in tables or "transactions" not in tables:
        return pd.Series(dtype=float)
    tx = tables["transactions"]
    lines = tx[(tx["coupon_disc"] != 0) | (tx["coupon_match_disc"] != 0)].copy()
    lines["day"] = pd.to_datetime(lines["transaction_timestamp"]).dt.normalize()
    redeemed = tables["coupon_redemptions"].merge(tables["coupons"], on=["coupon_upc", "campaign_id"])
    redeemed = redeemed.rename(columns={"redemption_date": "day"})
    redeemed["day"] = pd.to_datetime(redeemed["day"]).dt.normalize()
    matched = redeemed.merge(lines, on=["household_id", "product_id", "day"])
    discount = matched["coupon_disc"].abs() + matched["coupon_match_disc"].abs()
    shelf = matched["sales_value"] + matched["retail_disc"].abs() + discount
    matched = matched.assign(depth=discount / shelf.where(shelf > 0))
    keys = [c for c in ("household_id", "basket_id", "product_id", "coupon_upc") if c in matched]
    return matched.drop_duplicates(keys).groupby("campaign_id")["depth"].median().round(4)
