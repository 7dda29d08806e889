"""A/B readout: response rate by campaign, variant and segment, and uplift against control.

Input: one row per exposed customer and campaign (:func:`exposure_outcomes` builds it from
``campaign-events``) with ``customer_id, campaign_id, variant, responded`` and optionally
``segment``. Output (:func:`readout`): one row per campaign, segment (each segment and
``"all"``) and variant with

- ``exposures``: customers exposed to the variant; ``responses``: those who responded;
  ``rate = responses / exposures``;
- ``uplift``: ``rate`` minus the rate of the campaign's ``"control"`` variant in the same
  segment (percentage points as a fraction);
- ``uplift_lower``, ``uplift_upper``: its 95% interval by Newcombe's hybrid score method
  (method 10 of Newcombe 1998, Statistics in Medicine 17:873-890), built from the two arms'
  Wilson score intervals; it stays inside [-1, 1] and behaves at 0% and 100% rates;
- ``verdict``: ``"control"`` for the control rows; ``"too few exposures"`` when either arm has
  fewer than ``min_exposures`` (30), including a campaign without control; otherwise
  ``"better than control"`` (interval above 0), ``"worse than control"`` (below 0) or
  ``"no detectable difference"``.

The interval says how precisely the difference between the arms is measured, not why they
differ: when the arms were not assigned at random (e.g. The Complete Journey, see
``segstream.campaigns``) the difference includes selection bias.

>>> tuple(round(v, 4) for v in newcombe_interval(56, 70, 48, 80))  # Newcombe (1998), example (a)
(0.0524, 0.3339)
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from streams.campaign_contract import CONTROL

__all__ = [
    "ALL_SEGMENTS",
    "MIN_EXPOSURES",
    "READOUT_COLUMNS",
    "VERDICTS",
    "exposure_outcomes",
    "newcombe_interval",
    "readout",
    "wilson_interval",
]

ALL_SEGMENTS = "all"
MIN_EXPOSURES = 30
BETTER, WORSE, UNCLEAR, TOO_FEW, IS_CONTROL = (
    "better than control",
    "worse than control",
    "no detectable difference",
    "too few exposures",
    "control",
)
VERDICTS = (BETTER, WORSE, UNCLEAR, TOO_FEW, IS_CONTROL)
READOUT_COLUMNS = [
    "campaign_id",
    "segment",
    "variant",
    "exposures",
    "responses",
    "rate",
    "uplift",
    "uplift_lower",
    "uplift_upper",
    "verdict",
]
_KEYS = ["campaign_id", "segment"]


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _wilson(successes: np.ndarray, trials: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rate, lower, upper), element-wise; NaN where there are no trials."""
    x = successes.astype(float)
    n = np.where(trials > 0, trials, np.nan).astype(float)
    z2 = z * z
    centre = (x + z2 / 2) / (n + z2)
    half = z / (n + z2) * np.sqrt(np.maximum(x * (n - x) / n, 0.0) + z2 / 4)
    lower = np.where(x == 0, 0.0, np.clip(centre - half, 0.0, 1.0))  # exact at the edges, not 1e-17
    upper = np.where(x == n, 1.0, np.clip(centre + half, 0.0, 1.0))
    lower, upper = np.where(np.isnan(n), np.nan, lower), np.where(np.isnan(n), np.nan, upper)
    return x / n, lower, upper


def _newcombe(
    x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray, z: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p1 - p2, lower, upper), element-wise (method 10)."""
    p1, l1, u1 = _wilson(x1, n1, z)
    p2, l2, u2 = _wilson(x2, n2, z)
    difference = p1 - p2
    lower = difference - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = difference + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return difference, lower, upper


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of ``successes / trials`` (no continuity correction).

    >>> tuple(round(v, 4) for v in wilson_interval(81, 263))  # Newcombe (1998a), Table I
    (0.2553, 0.3662)
    >>> wilson_interval(0, 0)
    (nan, nan)
    """
    _check_counts(successes, trials)
    _, lower, upper = _wilson(np.array([successes]), np.array([trials]), _z(confidence))
    return float(lower[0]), float(upper[0])


def newcombe_interval(x1: int, n1: int, x2: int, n2: int, confidence: float = 0.95) -> tuple[float, float]:
    """Interval of ``x1/n1 - x2/n2`` by Newcombe's hybrid score method (method 10)."""
    _check_counts(x1, n1)
    _check_counts(x2, n2)
    _, lower, upper = _newcombe(
        np.array([x1]), np.array([n1]), np.array([x2]), np.array([n2]), _z(confidence)
    )
    return float(lower[0]), float(upper[0])


def _check_counts(successes: int, trials: int) -> None:
    if not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")


def exposure_outcomes(events: pd.DataFrame) -> pd.DataFrame:
    """One row per exposed customer and campaign: ``customer_id, campaign_id, variant, responded``.

    ``events`` has the ``campaign-events`` fields (``occurred_at`` as a datetime or epoch ms).
    A customer's first exposure to a campaign decides the variant (ties: smallest event_id);
    they responded if a response of theirs to the campaign occurred at or after it. Responses
    without an exposure, and repeated exposures or responses, count nothing.

    >>> events = pd.DataFrame({
    ...     "event_id": ["e1", "e2", "e3", "e4", "e5"],
    ...     "customer_id": ["a", "b", "a", "b", "c"],
    ...     "campaign_id": "8",
    ...     "variant": ["treatment", "control", "treatment", "control", "treatment"],
    ...     "type": ["exposure", "exposure", "response", "response", "response"],
    ...     "occurred_at": [10, 10, 20, 5, 30],
    ... })
    >>> exposure_outcomes(events)
      customer_id campaign_id    variant  responded
    0           a           8  treatment       True
    1           b           8    control      False
    """
    keys = ["campaign_id", "customer_id"]
    exposed = (
        events[events["type"] == "exposure"]
        .sort_values(["occurred_at", "event_id"], kind="stable")
        .drop_duplicates(keys)
    )
    responses = events.loc[events["type"] == "response", [*keys, "occurred_at"]]
    matched = exposed[[*keys, "occurred_at"]].merge(responses, on=keys, suffixes=("", "_response"))
    responders = matched.loc[
        matched["occurred_at_response"] >= matched["occurred_at"], keys
    ].drop_duplicates()
    flagged = exposed[["customer_id", "campaign_id", "variant"]].merge(
        responders.assign(responded=True), on=keys, how="left"
    )
    flagged["responded"] = flagged["responded"].astype("boolean").fillna(False).astype(bool)
    return flagged.reset_index(drop=True)


def readout(
    outcomes: pd.DataFrame, *, min_exposures: int = MIN_EXPOSURES, confidence: float = 0.95
) -> pd.DataFrame:
    """The readout table (columns ``READOUT_COLUMNS``), by campaign, segment and variant.

    ``outcomes``: ``campaign_id, variant, responded`` and optionally ``segment`` (missing
    segments count as ``"unknown"``), one row per exposed customer. Campaigns keep their order
    of first appearance (chronological for :func:`exposure_outcomes`); within one, segment
    ``"all"`` comes first, and the control row first in each segment.

    >>> outcomes = pd.DataFrame({
    ...     "campaign_id": "8",
    ...     "variant": ["control"] * 80 + ["treatment"] * 70,
    ...     "responded": [True] * 48 + [False] * 32 + [True] * 56 + [False] * 14,
    ... })
    >>> print(readout(outcomes).drop(columns=["campaign_id", "segment"]).round(4).to_string(index=False))
      variant  exposures  responses  rate  uplift  uplift_lower  uplift_upper             verdict
      control         80         48   0.6     NaN           NaN           NaN             control
    treatment         70         56   0.8     0.2        0.0524        0.3339 better than control
    """
    z = _z(confidence)
    rows = outcomes[["campaign_id", "variant", "responded"]].copy()
    rows["responded"] = rows["responded"].astype(bool)
    rows["segment"] = (
        outcomes["segment"].astype("str").where(outcomes["segment"].notna(), "unknown")
        if "segment" in outcomes
        else ALL_SEGMENTS
    )
    if "segment" in outcomes and (rows["segment"] == ALL_SEGMENTS).any():
        raise ValueError(f"segment {ALL_SEGMENTS!r} is reserved for the whole campaign")
    both = pd.concat([rows, rows.assign(segment=ALL_SEGMENTS)]) if "segment" in outcomes else rows
    table = (
        both.groupby([*_KEYS, "variant"], sort=False)["responded"]
        .agg(exposures="size", responses="sum")
        .reset_index()
    )
    control = table.loc[table["variant"] == CONTROL, [*_KEYS, "exposures", "responses"]]
    table = table.merge(control, on=_KEYS, how="left", suffixes=("", "_control"))
    table[["exposures_control", "responses_control"]] = (
        table[["exposures_control", "responses_control"]].fillna(0).astype("int64")
    )
    exposures, responses = table["exposures"].to_numpy(), table["responses"].to_numpy()
    n0, x0 = table["exposures_control"].to_numpy(), table["responses_control"].to_numpy()
    table["rate"] = responses / exposures
    uplift, lower, upper = _newcombe(responses, exposures, x0, n0, z)
    is_control = (table["variant"] == CONTROL).to_numpy()
    for column, values in (("uplift", uplift), ("uplift_lower", lower), ("uplift_upper", upper)):
        table[column] = np.where(is_control, np.nan, values)
    table["verdict"] = np.select(
        [is_control, (exposures < min_exposures) | (n0 < min_exposures), lower > 0, upper < 0],
        [IS_CONTROL, TOO_FEW, BETTER, WORSE],
        default=UNCLEAR,
    )
    first_seen = {campaign: i for i, campaign in enumerate(pd.unique(outcomes["campaign_id"]))}
    order = table.assign(
        _campaign=table["campaign_id"].map(first_seen),
        _all=table["segment"] != ALL_SEGMENTS,
        _control=~is_control,
    ).sort_values(["_campaign", "_all", "segment", "_control", "variant"], kind="stable")
    return order[READOUT_COLUMNS].reset_index(drop=True)
