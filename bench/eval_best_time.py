"""``make eval``, best time: do a household's predicted top-3 windows catch its next purchase?

The Complete Journey (real basket times; CDNOW has dates only, every purchase at midnight, so
it has no hour-of-week profile to learn), split in time at ``CUT``:

1. every basket before the cut goes, as its wire JSON, through the worker's own ingest step
   (``agents.ingest.ingest_batch`` with the worker's talliers) into the reference store
   (``state.customer.memory_store.MemoryStore``), so the hour-of-week counters are exactly the live ones;
2. each household's named segment at the cut comes from the export's rules
   (``segstream.export.customers_frame`` as of the last event before the cut), saved as the
   evaluator would save it, and the segment profiles are read as the worker reads them
   (``state.analytics.analytics_reads.segment_hours``);
3. for every household with a basket before the cut and one after its seventh day, the
   predicted top-3 3-hour windows (``customer_best_time``, the code behind
   ``GET /customers/{id}/best-time``, prior weight ``SEGSTREAM_BEST_TIME_PRIOR``'s default, fixed
   before this evaluation was run) are checked against the window of its **next** basket after
   each of the 7 days from the cut (00:00: so that every weekday starts once; the next basket
   after a single Sunday cut falls mostly on Sunday evening and Monday, where the population's
   busiest windows are), and against every basket in the 28 days after the cut.

Baselines: **uniform** (any 3 of the 56 windows: 3/56 = 5.4%) and **population** (the 3 busiest
windows of everyone's baskets before the cut, the same for every household). Also shown: the
household's own profile alone (k = 0), its segment's alone, and other prior weights (a
sensitivity table, not a tuning: the default stays what it was). Intervals: 95%, normal
approximation; the model-minus-population difference is paired (same households); for the 28 days' baskets
(a basket-weighted share: frequent shoppers weigh more) the interval resamples households. Times are
the data set's as loaded (naive, taken as UTC: every household in one time zone). Writes
``bench/eval_best_time.json`` and prints Markdown.
"""

from __future__ import annotations

import asyncio
import json
import math
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.settings import Settings
from bench.eval_cohorts import fold, wire_messages
from segstream.export import customers_frame
from segstream.sources import load_completejourney, occurred_at_ms
from state.analytics.analytics_reads import SegmentHours, customer_best_time, segment_hours
from state.analytics.best_time import (
    BLOCK_HOURS,
    BLOCKS,
    block_name,
    hour_of_week,
    shrink,
    top_windows,
    uniform,
)
from state.customer.memory_store import MemoryStore
from state.customer.profile_store import MemoryProfileStore
from state.customer.rfm import DAY_MS
from state.segments.segments import load_preset

RESULTS = Path(__file__).with_name("eval_best_time.json")
CUT = "2017-10-01"
FOLLOW_DAYS = 28
START_DAYS = 7
TOP = 3
WEIGHTS = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
HISTORY_BANDS = ((1, 4), (5, 19), (20, 10**9))
SEED = 5


def block_of(ms: int) -> int:
    return hour_of_week(ms, 0) // BLOCK_HOURS


async def learn(history: pd.DataFrame, cut_ms: int) -> tuple[MemoryStore, SegmentHours]:
    """Fold the baskets before the cut; save each household's segment at the cut; read the profiles."""
    before = history[np.array(occurred_at_ms(history)) < cut_ms]
    store = MemoryStore()
    await fold(wire_messages(before), store)
    frame = customers_frame(await store.all_customers(), await store.watermark(), load_preset("rfm11"))
    rows = [
        {"customer_id": c, "profile": [1, 1, 1, segment, None, None]}
        for c, segment in zip(frame["customer_id"], frame["rfm_segment"], strict=True)
        if isinstance(segment, str)
    ]
    profiles = MemoryProfileStore()
    await profiles.save(cut_ms, None, None, rows, {})
    return store, await segment_hours(store, profiles)


def rate(scores: Sequence[float]) -> dict[str, Any]:
    """Mean per-household score (share of its next baskets caught) with a 95% normal interval."""
    x = np.array(scores, dtype=float)
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))
    return {
        "hit_rate": round(float(x.mean()), 4),
        "ci95": [round(float(x.mean() - half), 4), round(float(x.mean() + half), 4)],
        "n": len(x),
    }


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    d = np.array(a, dtype=float) - np.array(b, dtype=float)
    half = 1.96 * d.std(ddof=1) / math.sqrt(len(d))
    return {
        "difference": round(float(d.mean()), 4),
        "ci95": [round(float(d.mean() - half), 4), round(float(d.mean() + half), 4)],
    }


async def evaluate(history: pd.DataFrame) -> dict[str, Any]:
    cut_ms = int(pd.Timestamp(CUT, tz="UTC").value // 1_000_000)
    started = time.perf_counter()
    store, hours = await learn(history, cut_ms)
    learn_seconds = time.perf_counter() - started
    at = np.array(occurred_at_ms(history))
    events = history.assign(at=at).sort_values(["at", "event_id"])
    before_counts = events[events["at"] < cut_ms].groupby("customer_id").size()
    after = events[(events["at"] >= cut_ms) & events["customer_id"].isin(before_counts.index)]
    following = after[after["at"] < cut_ms + FOLLOW_DAYS * 86_400_000]
    starts = [cut_ms + d * DAY_MS for d in range(START_DAYS)]  # the "next" basket after each of 7 days
    firsts = [after[after["at"] >= t].groupby("customer_id")["at"].first().map(block_of) for t in starts]
    households = sorted(set(firsts[-1].index))  # a basket after the last start: one after each
    next_blocks = {c: [int(f[c]) for f in firsts] for c in households}
    follow_blocks = following.groupby("customer_id")["at"].apply(lambda s: [block_of(int(x)) for x in s])
    predict_for = sorted({*households, *follow_blocks.index})

    population = shrink(hours.population, uniform(), 0)
    population_top = {w.block for w in top_windows(population, population, TOP)}
    default = Settings().best_time_prior
    predicted: dict[str, dict[str, set[int]]] = {"population": {c: population_top for c in predict_for}}
    for k in sorted({*WEIGHTS, default}):
        predicted[f"k={k:g}"] = {}
        for c in predict_for:
            found = await customer_best_time(store, hours, c, k, TOP)
            assert found is not None
            predicted[f"k={k:g}"][c] = {w.block for w in found.windows}
    predicted["segment only"] = {}
    for c in predict_for:
        segment = hours.segment_of.get(c)
        shares = shrink(hours.segments[segment], population, 0) if segment else population
        predicted["segment only"][c] = {w.block for w in top_windows(shares, population, TOP)}
    model = f"k={default:g}"

    def hits(name: str, who: Sequence[str], days: Sequence[int] = range(START_DAYS)) -> list[float]:
        """Per household: the share of its next baskets (one after each start day) in its windows."""
        return [sum(next_blocks[c][d] in predicted[name][c] for d in days) / len(days) for c in who]

    def follow_share(name: str) -> float:
        caught = [b in predicted[name][c] for c in follow_blocks.index for b in follow_blocks[c]]
        return round(sum(caught) / len(caught), 4)

    def follow_difference(a: str, b: str, reps: int = 2000) -> dict[str, Any]:
        """Share of the 28 days' baskets caught by ``a`` minus by ``b``, CI by resampling households."""
        who = list(follow_blocks.index)
        caught = np.array(
            [[sum(x in predicted[name][c] for x in follow_blocks[c]) for c in who] for name in (a, b)],
            dtype=float,
        )
        sizes = np.array([len(follow_blocks[c]) for c in who], dtype=float)
        rng = np.random.default_rng(SEED)
        picks = rng.integers(0, len(who), size=(reps, len(who)))
        diffs = (caught[0][picks].sum(1) - caught[1][picks].sum(1)) / sizes[picks].sum(1)
        point = (caught[0].sum() - caught[1].sum()) / sizes.sum()
        low, high = np.percentile(diffs, [2.5, 97.5])
        return {"difference": round(float(point), 4), "ci95": [round(float(low), 4), round(float(high), 4)]}

    scorers = {
        name: rate(hits(name, households)) | {"share_of_28_day_baskets": follow_share(name)}
        for name in predicted
    }
    bands = {}
    for low, high in HISTORY_BANDS:
        who = [c for c in households if low <= before_counts[c] <= high]
        bands[f"{low}-{high if high < 10**9 else ''}".rstrip("-") + ("+" if high >= 10**9 else "")] = {
            "households": len(who),
            model: rate(hits(model, who))["hit_rate"],
            "k=0": rate(hits("k=0", who))["hit_rate"],
            "population": rate(hits("population", who))["hit_rate"],
        }
    by_start = {
        pd.Timestamp(t, unit="ms", tz="UTC").strftime("%a %Y-%m-%d"): {
            name: rate(hits(name, households, [d]))["hit_rate"] for name in (model, "population")
        }
        for d, t in enumerate(starts)
    }
    return {
        "data_set": "The Complete Journey",
        "cut": CUT,
        "next_basket_after": f"each of the {START_DAYS} days from the cut (00:00), one basket per day per household",
        "by_start_day": by_start,
        "households": len(households),
        "baskets_before_cut": int(before_counts.sum()),
        "baskets_in_28_days_after": len(following),
        "households_with_28_day_baskets": len(follow_blocks),
        "learn_seconds": round(learn_seconds, 1),
        "model": model,
        "uniform_hit_rate": round(TOP / BLOCKS, 4),
        "population_top_windows": [block_name(b) for b in sorted(population_top)],
        "scorers": scorers,
        "model_minus_population": paired(hits(model, households), hits("population", households)),
        "model_minus_own_only": paired(hits(model, households), hits("k=0", households)),
        "model_minus_population_28_days": follow_difference(model, "population"),
        "by_baskets_before_cut": bands,
    }


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "| top-3 windows from | next basket inside (95% CI) | baskets of the next 28 days inside |",
        "|---|---:|---:|",
        f"| uniform (any 3 of 56) | {r['uniform_hit_rate']:.1%} | {r['uniform_hit_rate']:.1%} |",
    ]
    for name, s in r["scorers"].items():
        label = f"{name} (served default)" if name == r["model"] else name
        lines.append(
            f"| {label} | {s['hit_rate']:.1%} ({s['ci95'][0]:.1%} to {s['ci95'][1]:.1%}) | {s['share_of_28_day_baskets']:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    result = asyncio.run(evaluate(load_completejourney()))
    meta = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "windows": f"{BLOCKS} blocks of {BLOCK_HOURS} hours, Monday 00-03 first",
    }
    RESULTS.write_text(json.dumps({"meta": meta, "results": result}, indent=2) + "\n")
    print(markdown(result))
    print(f"model minus population (paired): {json.dumps(result['model_minus_population'])}")
    print(f"... over the 28 days' baskets: {json.dumps(result['model_minus_population_28_days'])}")
    print(f"by baskets before the cut: {json.dumps(result['by_baskets_before_cut'])}")
    print(f"by start day: {json.dumps(result['by_start_day'])}")


if __name__ == "__main__":
    main()
