"""The customer table as the live state has it, for ``segstream export customers``."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from segstream.batch import RFM_COLUMNS
from state.customer.rfm import CustomerState, recency_days
from state.evaluator.predict import predictions_of
from state.evaluator.read_model import Summary
from state.segments.playbook import recommended_action
from state.segments.segments import Preset, score_customers

__all__ = [
    "CLUSTER_COLUMNS",
    "PLAYBOOK_COLUMNS",
    "PREDICTION_COLUMNS",
    "PROFILE_COLUMNS",
    "SCORE_COLUMNS",
    "ExportFormat",
    "cluster_summary",
    "customers_frame",
    "rfm_frame",
    "segment_summary",
    "with_bundles",
    "with_playbook",
    "with_predictions",
    "with_profiles",
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


def rfm_frame(states: Sequence[CustomerState], as_of_ms: int | None) -> pd.DataFrame:
    """One row per customer (sorted by id) with the RFM columns, recency as of ``as_of_ms``."""
    rows = sorted(states, key=lambda s: s.customer_id)

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
    return frame[RFM_COLUMNS]


def customers_frame(states: Sequence[CustomerState], as_of_ms: int | None, preset: Preset) -> pd.DataFrame:
    """:func:`rfm_frame` plus scores ranked afresh over ``states``.

    The batch computation: RFM scores are exact ranks in the population of customers with a
    purchase; refund-only customers have no scores and no segment. The benchmarks and the oracles
    use it; the live export takes the evaluator's versioned profiles instead (:func:`with_profiles`).
    """
    frame = rfm_frame(states, as_of_ms)
    scores = score_customers(states)
    triples = [scores.get(c) for c in frame["customer_id"]]
    for i, column in enumerate(SCORE_COLUMNS[:3]):
        frame[column] = pd.Series([t[i] if t else None for t in triples], dtype="Int64")
    frame["rfm_segment"] = pd.Series(
        [preset.segment_for(*t).segment if t else None for t in triples], dtype=str
    )
    return frame[RFM_COLUMNS + SCORE_COLUMNS]


PROFILE_COLUMNS = [*SCORE_COLUMNS, *CLUSTER_COLUMNS, "evaluated_at", "cutpoints_version"]


def with_profiles(
    frame: pd.DataFrame,
    records: Sequence[Mapping[str, Any]],
    clock_ms: int | None,
    cutpoints_version: int | None,
) -> pd.DataFrame:
    """``frame`` with each customer's **versioned profile**: the R/F/M scores, named segment and
    cluster the evaluator published (the same record ``customer-segments`` and ``GET /customers/{id}``
    show), as of the evaluator's clock (``evaluated_at``) under cut-point version ``cutpoints_version``.

    One source of truth: the export never ranks afresh, so between clock instants it cannot disagree
    with the topic or HTTP. A customer the evaluator has not evaluated yet (no instant since their first
    purchase), a refund-only customer and, for the cluster, one evaluated during the cluster model's
    warm-up have none. The RFM columns stay the store's facts at the watermark (every applied event).

    >>> frame = pd.DataFrame({"customer_id": ["a", "b"]})
    >>> records = [{"customer_id": "a", "profile": [5, 4, 3, "Champions", 1, "Loyal"]}]
    >>> out = with_profiles(frame, records, 86_400_000, 7)
    >>> [str(v) for v in out.loc[0, ["r_score", "rfm_segment", "cluster_name", "cutpoints_version"]]]
    ['5', 'Champions', 'Loyal', '7']
    >>> bool(out.loc[1, ["r_score", "rfm_segment", "cluster"]].isna().all()), str(out.loc[1, "evaluated_at"])
    (True, '1970-01-02 00:00:00+00:00')
    """
    profiles = {str(r["customer_id"]): r["profile"] for r in records if r.get("profile")}
    found = [profiles.get(c) for c in frame["customer_id"]]

    def column(i: int, dtype: str) -> pd.Series:
        return pd.Series([p[i] if p else None for p in found], dtype=dtype, index=frame.index)

    stamp = pd.to_datetime(
        pd.Series([clock_ms] * len(frame), dtype="Float64", index=frame.index), unit="ms", utc=True
    )
    return frame.assign(
        r_score=column(0, "Int64"),
        f_score=column(1, "Int64"),
        m_score=column(2, "Int64"),
        rfm_segment=column(3, "str"),
        cluster=column(4, "Int64"),
        cluster_name=column(5, "str"),
        evaluated_at=stamp,
        cutpoints_version=pd.Series([cutpoints_version] * len(frame), dtype="Int64", index=frame.index),
    )


def with_predictions(
    frame: pd.DataFrame, records: Sequence[Mapping[str, Any]], summary: Summary | None
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
