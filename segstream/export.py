"""The customer table as the live state has it, for ``segstream export customers``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from segstream.batch import RFM_COLUMNS
from state.rfm import CustomerState, recency_days

__all__ = ["ExportFormat", "customers_frame", "write_frame"]

ExportFormat = Literal["csv", "parquet"]
RFC3339_UTC = "%Y-%m-%dT%H:%M:%SZ"


def customers_frame(states: Sequence[CustomerState], as_of_ms: int | None) -> pd.DataFrame:
    """One row per customer (sorted by id), recency as of ``as_of_ms`` (the watermark)."""
    rows = sorted(states, key=lambda s: s.customer_id)

    def stamps(values: list[int | None]) -> pd.Series:
        return pd.to_datetime(pd.Series(values, dtype="Float64"), unit="ms", utc=True)

    frame = pd.DataFrame(
        {
            "customer_id": pd.Series([s.customer_id for s in rows], dtype=str),
            "first_purchase_at": stamps([s.first_purchase_ms for s in rows]),
            "last_purchase_at": stamps([s.last_purchase_ms for s in rows]),
            "frequency": pd.Series([s.frequency for s in rows], dtype="int64"),
            "monetary_cents": pd.Series([s.monetary_cents for s in rows], dtype="int64"),
            "refunds": pd.Series([s.refunds for s in rows], dtype="int64"),
            "recency_days": pd.Series(
                [recency_days(s, as_of_ms) if as_of_ms is not None else None for s in rows], dtype="Int64"
            ),
        }
    )
    frame["monetary"] = frame["monetary_cents"] / 100
    return frame[RFM_COLUMNS]


def write_frame(frame: pd.DataFrame, fmt: ExportFormat, output: str) -> None:
    """Write ``frame`` as CSV or Parquet to ``output`` (``-`` = stdout; Parquet needs a file)."""
    if fmt == "parquet":
        if output == "-":
            frame.to_parquet(sys.stdout.buffer, index=False)
        else:
            frame.to_parquet(Path(output), index=False)
    else:
        frame.to_csv(sys.stdout if output == "-" else Path(output), index=False, date_format=RFC3339_UTC)
