"""The customer table as the live state has it, for ``segstream export customers``."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from segstream.batch import RFM_COLUMNS
from state.segments.playbook import recommended_action
from state.evaluator.predict import predictions_of
from state.customer.rfm import CustomerState, recency_days
from state.segments.segments import Preset, score_customers

__all__ = [
    "CLUSTER_COLUMNS",
    "PLAYBOOK_COLUMNS",
    "PREDICTION_COLUMNS",
    "SCORE_COLUMNS",
    "ExportFormat",
    "cluster_summary",
    "customers_frame",
    "segment_summary",
    "with_bundles",
    "with_clusters",
    "with_playbook",
    "with_predictions",
    "write_frame",
]

SCORE_COLUMNS = ["r_score", "f_score", "m_score", "rfm_segment"]
CLUSTER_COLUMNS = ["cluster", "cluster_name"]
PREDICTION_COLUMNS = [
    "p_alive",
    "churn_probability",
    "churn_band",
    "expected_purchases_90d",
    "expected_next_order_at",
    "clv",
    "response_propensity",
    "response_uplift",
]
PLAYBOOK_COLUMNS = ["recommended_action", "recommended_channel", "recommended_offer"]

ExportFormat = Literal["csv", "parquet"]
RFC3339_UTC = "%Y-%m-%dT%H:%M:%SZ"


def customers_frame(states: Sequence[CustomerState], as_of_ms: int | None, preset: Preset) -> pd.DataFrame:
    """One row per customer (sorted by id), recency as of ``as_of_ms`` (the watermark).

    RFM scores are exact ranks in the population of customers with a purchase;
    refund-only customers have no scores and no segment.
    """
    rows = sorted(states, key=lambda s: s.customer_id)
    scores = score_customers(rows)

    def stamps(values: list[int | None]) -> pd.Series:
        return pd.to_datetime(pd.Series(values, dtype="Float64"), unit="ms", utc=True)

    frame = pd.DataFrame(
        {
            "customer_id": pd.Series([s.customer_id for s in rows], dtype=str),
            "first_purchase_at": stamps([s.first_purchase_ms for s in rows]),
            "last_purchase_at": stamps([s.last_purchase_ms for s in rows]),
            "frequency": pd.Series([s.frequency for s in rows], dtype="int64"),
            "purchase_days": pd.Series([s.purchase_days for s in rows], dtype="int64"),
            "monetary_cents": pd.Series([s.monetary_cents for s in rows], dtype="int64"),
            "refunds": pd.Series([s.refunds for s in rows], dtype="int64"),
            "recency_days": pd.Series(
                [recency_days(s, as_of_ms) if as_of_ms is not None else None for s in rows], dtype="Int64"
            ),
        }
    )
    frame["monetary"] = frame["monetary_cents"] / 100
    triples = [scores.get(s.customer_id) for s in rows]
    for i, column in enumerate(SCORE_COLUMNS[:3]):
        frame[column] = pd.Series([t[i] if t else None for t in triples], dtype="Int64")
    frame["rfm_segment"] = pd.Series(
        [preset.segment_for(*t).segment if t else None for t in triples], dtype=str
    )
    return frame[RFM_COLUMNS + SCORE_COLUMNS]


def with_clusters(frame: pd.DataFrame, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """``frame`` plus each customer's online cluster id and name from the evaluator's saved rows.

    Customers the evaluator has not evaluated yet (no clock tick since their first purchase),
    or evaluated before the cluster model's warm-up ended, have none.
    """
    profiles = {str(r["customer_id"]): r["profile"] for r in records if r.get("profile")}
    ids = frame["customer_id"].tolist()
    cluster = [profiles[c][4] if c in profiles else None for c in ids]
    names = [profiles[c][5] if c in profiles else None for c in ids]
    return frame.assign(
        cluster=pd.Series(cluster, dtype="Int64", index=frame.index),
        cluster_name=pd.Series(names, dtype=str, index=frame.index),
    )


def with_predictions(
    frame: pd.DataFrame, records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any] | None
) -> pd.DataFrame:
    """``frame`` plus each customer's predictions as of the evaluator's clock (``state.evaluator.predict``).

    The numbers ``GET /customers/{id}`` shows: the saved lifetime model and churn scorer in
    closed form. Empty for customers the evaluator has not scored (see ``predictions_of``).
    """
    found = dict(
        zip(
            (str(r["customer_id"]) for r in records),
            predictions_of(records, summary) if summary else [None] * len(records),
            strict=True,
        )
    )
    rows = [found.get(c) or {} for c in frame["customer_id"]]

    def column(name: str) -> list[Any]:
        return [row.get(name) for row in rows]

    next_ms = pd.Series(column("expected_next_order_ms"), dtype="Float64", index=frame.index)
    return frame.assign(
        p_alive=pd.Series(column("p_alive"), dtype="Float64", index=frame.index),
        churn_probability=pd.Series(column("churn_probability"), dtype="Float64", index=frame.index),
        churn_band=pd.Series(column("churn_band"), dtype=str, index=frame.index),
        expected_purchases_90d=pd.Series(
            column("expected_purchases_90d"), dtype="Float64", index=frame.index
        ),
        expected_next_order_at=pd.to_datetime(next_ms, unit="ms", utc=True),
        clv=pd.Series(column("clv"), dtype="Float64", index=frame.index),
        response_propensity=pd.Series(column("response_propensity"), dtype="Float64", index=frame.index),
        response_uplift=pd.Series(column("response_uplift"), dtype="Float64", index=frame.index),
    )


def with_playbook(
    frame: pd.DataFrame, preset: Preset, offers: Sequence[str | None] | None = None
) -> pd.DataFrame:
    """``frame`` plus each customer's recommended action, channel and offer (``state.segments.playbook``):
    the playbook entry of their ``rfm_segment``, empty without a segment or an entry. ``offers``:
    each row's offer, their top bundle (``state.analytics.bundles``); without it the offer stays empty."""
    given = list(offers) if offers is not None else [None] * len(frame)
    entries = [
        recommended_action(preset, s, offer=o) if isinstance(s, str) else None
        for s, o in zip(frame["rfm_segment"], given, strict=True)
    ]
    return frame.assign(
        recommended_action=pd.Series(
            [e.action if e else None for e in entries], dtype=str, index=frame.index
        ),
        recommended_channel=pd.Series(
            [e.channel if e else None for e in entries], dtype=str, index=frame.index
        ),
        recommended_offer=pd.Series([e.offer if e else None for e in entries], dtype=str, index=frame.index),
    )


def with_bundles(frame: pd.DataFrame, bundles: Sequence[list[str]]) -> pd.DataFrame:
    """``frame`` plus ``bundles``: each customer's bundle categories, best first (``state.analytics.bundles``;
    an empty list when no rule applies). CSV writes the list as JSON text."""
    return frame.assign(bundles=pd.Series(list(bundles), dtype=object, index=frame.index))


def segment_summary(frame: pd.DataFrame, preset: Preset) -> pd.DataFrame:
    """Per named segment, in preset order: size, share, mean R/F/M and share of net spend."""
    buyers = frame[frame["rfm_segment"].notna()]
    grouped = buyers.groupby("rfm_segment")
    table = pd.DataFrame(
        {
            "customers": grouped.size(),
            "mean_recency_days": grouped["recency_days"].mean(),
            "mean_frequency": grouped["frequency"].mean(),
            "mean_monetary": grouped["monetary"].mean(),
            "value": grouped["monetary_cents"].sum(),
        }
    ).reindex(list(preset.segments), fill_value=0)
    table["share"] = table["customers"] / max(len(buyers), 1)
    table["value_share"] = table["value"] / max(int(buyers["monetary_cents"].sum()), 1)
    table.index.name = "segment"
    columns = ["customers", "share", "mean_recency_days", "mean_frequency", "mean_monetary", "value_share"]
    return table[columns].astype(float).round(3).astype({"customers": "int64"})


def cluster_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per online cluster (id order): name, size, share, mean R/F/M and share of net spend."""
    clustered = frame[frame["cluster"].notna()]
    grouped = clustered.groupby("cluster")
    table = pd.DataFrame(
        {
            "name": grouped["cluster_name"].first(),
            "customers": grouped.size(),
            "mean_recency_days": grouped["recency_days"].mean().astype(float).round(3),
            "mean_frequency": grouped["frequency"].mean().round(3),
            "mean_monetary": grouped["monetary"].mean().round(3),
            "value_share": (
                grouped["monetary_cents"].sum() / max(int(clustered["monetary_cents"].sum()), 1)
            ).round(3),
        }
    )
    table.insert(2, "share", (table["customers"] / max(len(clustered), 1)).round(3))
    return table


def write_frame(frame: pd.DataFrame, fmt: ExportFormat, output: str) -> None:
    """Write ``frame`` as CSV or Parquet to ``output`` (``-`` = stdout; Parquet needs a file)."""
    if fmt == "parquet":
        if output == "-":
            frame.to_parquet(sys.stdout.buffer, index=False)
        else:
            frame.to_parquet(Path(output), index=False)
    else:
        lists = [
            c
            for c in frame.columns
            if frame[c].dtype == object and isinstance(next(iter(frame[c]), None), list)
        ]
        if lists:  # as JSON text, not Python's repr
            frame = frame.assign(**{c: frame[c].map(json.dumps) for c in lists})
        frame.to_csv(sys.stdout if output == "-" else Path(output), index=False, date_format=RFC3339_UTC)
