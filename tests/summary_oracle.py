"""An independent oracle for the evaluator's summary groups: pandas groupby over the profiled rows.

The summary (``state.segments.population.summarize``) reads running integer sums; this recomputes
every group's figures from the rows themselves, the way an analyst would, and compares them to
the document at the rounding it uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from state.customer.rfm import DAY_MS
from state.segments.population import Population

ROW_COLUMNS = ["segment", "cluster", "last_ms", "frequency", "monetary_cents"]


def population_rows(pop: Population) -> pd.DataFrame:
    """The profiled rows of ``pop`` (ROW_COLUMNS), read from its columns and profiles."""
    rows = [i for i, p in enumerate(pop.profiles) if p is not None]
    return pd.DataFrame(
        {
            "segment": [p.rfm_segment for p in pop.profiles if p is not None],
            **{name: pop.column(name)[rows] for name in ROW_COLUMNS[1:]},
        },
        columns=ROW_COLUMNS,
    )


def oracle_groups(
    rows: pd.DataFrame, as_of_ms: int, key: str, keys: Sequence[Any]
) -> dict[Any, dict[str, Any]]:
    """Per ``key`` value in ``keys``: customers, share, unrounded means (recency in days) and value share."""
    frame = rows.assign(
        recency_days=(as_of_ms - rows["last_ms"]) / DAY_MS, value=rows["monetary_cents"].clip(lower=0)
    )
    everyone, total_value = len(frame), max(int(frame["value"].sum()), 1)
    grouped = frame.groupby(key).agg(
        customers=("frequency", "size"),
        recency=("recency_days", "mean"),
        frequency=("frequency", "mean"),
        monetary=("monetary_cents", "mean"),
        value=("value", "sum"),
    )
    out: dict[Any, dict[str, Any]] = {}
    for k in keys:
        if k in grouped.index:
            g = grouped.loc[k]
            n = int(g["customers"])
            out[k] = {
                "customers": n,
                "share": round(n / max(everyone, 1), 4),
                "mean_recency_days": float(g["recency"]),  # unrounded: compared by assert_same_groups
                "mean_frequency": round(float(g["frequency"]), 3),
                "mean_monetary": round(float(g["monetary"]) / 100, 2),
                "value_share": round(int(g["value"]) / total_value, 4),
            }
        else:
            out[k] = {
                "customers": 0,
                "share": 0.0,
                "mean_recency_days": None,
                "mean_frequency": None,
                "mean_monetary": None,
                "value_share": 0.0,
            }
    return out


def same_recency(document: float | None, oracle: float | None) -> bool:
    """Equal at 2 decimals; or one unit apart only where the mean sits on a half unit (x.xx5).

    pandas averages per-row recencies already rounded to floats; the document divides the exact
    integer numerator once. The two agree to a few ulps, so their 2-decimal roundings can differ
    only when the exact mean is within those ulps of a rounding boundary.
    """
    if document is None or oracle is None:
        return document is oracle
    if document == round(oracle, 2):
        return True
    fraction = oracle * 100 - math.floor(oracle * 100)
    return abs(fraction - 0.5) < 1e-9 * max(1.0, abs(oracle) * 100) and abs(document - oracle) <= 0.005 + 1e-9


def assert_same_groups(
    summary: Mapping[str, Any], rows: pd.DataFrame, as_of_ms: int, cluster_names: Mapping[int, str]
) -> None:
    """The summary's total, segments and clusters equal the oracle's over ``rows`` (ROW_COLUMNS)."""
    assert summary["customers"] == len(rows)
    for part, key, name in (("segments", "segment", "segment"), ("clusters", "cluster", "cluster")):
        keys = [group[name] for group in summary[part]]
        expected = oracle_groups(rows, as_of_ms, key, keys)
        for group in summary[part]:
            want = expected[group[name]]
            got = {k: v for k, v in group.items() if k not in (name, "name")}
            assert same_recency(got.pop("mean_recency_days"), want.pop("mean_recency_days")), (group, want)
            assert got == want, (part, group[name], got, want)
    assert [c["cluster"] for c in summary["clusters"]] == sorted(cluster_names)
    assert [c["name"] for c in summary["clusters"]] == [cluster_names[c] for c in sorted(cluster_names)]
