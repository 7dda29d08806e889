"""What one evaluator save writes to Redis, now and as the versions that rewrote everything did.

Advances a pure ``Evaluator`` (preset rfm11, the worker's defaults) over a generated history
(``make bench-scale``'s ``.cache/scale/*.parquet``, read with ``segstream.sources.history_logs``)
to one day past its last event, saves once (everything), then counts the bytes of the save after
each of three instants: an hour later (off the grid: a quiet instant), the next midnight (a grid
instant), and the next grid instant that makes a churn prediction batch. Bytes per save: the
packed rows that changed (``state.adapters.view_rows``), the summary and meta JSON, and the
learned state: now what ``Evaluator.take_saved_parts`` returns (the snapshot if its bytes
changed, the batches made), before 2026-11-30 the whole snapshot with every open batch inside.

Usage: ``.venv/bin/python bench/save_bytes.py [.cache/scale/sparse-10000-seed1.parquet]``
"""

from __future__ import annotations

import json
import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from segstream.sources import history_logs
from state.adapters.view_rows import encode_row
from state.customer import snapshots
from state.customer.rfm import DAY_MS
from state.evaluator.config import EvaluatorConfig
from state.evaluator.evaluate import Evaluator
from state.segments.segments import load_preset


def save(evaluator: Evaluator, label: str) -> None:
    """Print what a save now would write, and what the previous versions wrote."""
    rows = evaluator.take_dirty()
    assert evaluator.cutpoints is not None
    meta = {"generation": 1, "clock_ms": evaluator.clock_ms, "cutpoints": evaluator.cutpoints.to_json()}
    common = (
        sum(len(encode_row(r)) for r in rows) + len(json.dumps(evaluator.summary())) + len(json.dumps(meta))
    )
    blob = evaluator.snapshot()
    whole = len(pickle.dumps({**snapshots.load(blob), "churn_batches": evaluator.batches}))
    parts = evaluator.take_saved_parts()
    model = len(parts.model) if parts.model is not None else 0
    batches = sum(len(data) for _, data in parts.batches_added)
    print(
        f"{label}: {len(rows):,} rows, {len(evaluator.batches)} open batches"
        f" ({len(parts.batches_added)} made, {len(parts.batches_removed)} resolved)\n"
        f"  now:    {common + model + batches:>11,} B (rows+summary+meta {common:,}, snapshot {model:,},"
        f" batches {batches:,})\n"
        f"  before: {common + whole:>11,} B (rows+summary+meta {common:,}, snapshot with batches {whole:,})",
        flush=True,
    )


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else ".cache/scale/sparse-10000-seed1.parquet"
    history = pd.read_parquet(path)
    end = (int(history.occurred_at.max().timestamp() * 1000) // DAY_MS + 1) * DAY_MS
    evaluator = Evaluator(EvaluatorConfig(load_preset("rfm11")))
    started = time.perf_counter()
    evaluator.advance(end, history_logs(history))
    print(
        f"{path}: {len(evaluator.population):,} customers advanced in {time.perf_counter() - started:.0f} s"
    )
    learned = {"churn": evaluator.churn, "campaigns": evaluator.campaigns, "drift": evaluator.drift}
    sizes = {name: len(pickle.dumps(part)) for name, part in learned.items()}
    print("snapshot parts (B):", {**sizes, "cluster model": len(evaluator.model.snapshot())})
    save(evaluator, "first save")
    evaluator.advance(end + 3_600_000, {})
    save(evaluator, "quiet instant (1 h later, off the grid)")
    evaluator.advance(end + DAY_MS, {})
    save(evaluator, "grid instant, no batch made")
    churn_every = evaluator.config.churn_every_ms
    batch_at = (end // churn_every + 1) * churn_every
    evaluator.advance(batch_at - DAY_MS, {})
    evaluator.take_dirty(), evaluator.take_saved_parts()
    evaluator.advance(batch_at, {})
    save(evaluator, f"grid instant making a batch ({(batch_at - end) // DAY_MS} days later)")


if __name__ == "__main__":
    main()
