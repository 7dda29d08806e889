"""End of ``bench/chaos.py`` (``make chaos``): waiting for the workers to catch up, and the checks.

After the last publish: the final clock tick, the wait for lag 0, every event applied and the
evaluator at the tick, then for the late events to be swept; ``customer-segments`` against the
export (``check_segments``); and the Markdown table printed from ``bench/chaos.json``. Kept
apart from the load and the faults: these functions only read the stack and the result.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd
from harness import Supervisor, consumer_lag, evaluator_clock, late_entries_pending, read_stats

from agents.settings import Settings
from segstream.kafka_io import read_topic, send_tick
from streams.topics import CUSTOMER_SEGMENTS, PURCHASES


def send_final_tick(settings: Settings, final_ms: int) -> None:
    """The final clock tick, retried (Kafka may still be settling after the faults)."""
    for _ in range(30):
        try:
            send_tick(settings, final_ms, source="chaos")
            break
        except Exception:
            time.sleep(2)


def wait_caught_up(
    settings: Settings, sup: Supervisor, final_ms: int, unique: int, published_at: float, timeout_s: float
) -> tuple[float | None, float | None, float | None, float]:
    """Seconds after the last publish (``published_at``) until the lag was 0, every one of the
    ``unique`` events was applied, the evaluator reached ``final_ms`` (None: not within
    ``timeout_s``), and until the late events were all swept (the clock still, the agenda empty)."""
    # one wait for all three, as they overlap: the evaluator may hold a rebalance (and so the
    # offset commits) while it works through the final tick
    drained_s = applied_s = evaluated_s = None
    zero_polls = 0
    while time.monotonic() - published_at < timeout_s:
        sup.tick()
        now = time.monotonic() - published_at
        if drained_s is None:
            lag = consumer_lag(settings, settings.topic(PURCHASES))
            zero_polls = zero_polls + 1 if lag == 0 else 0
            drained_s = now if zero_polls >= 2 else None
        if applied_s is None:
            stats = read_stats(settings)
            # with lag 0 this says every event was folded (a retried fold counts as redelivered)
            applied_s = now if stats is not None and stats.applied + stats.redelivered >= unique else None
        if evaluated_s is None and (evaluator_clock(settings) or 0) >= final_ms:
            evaluated_s = now
        if None not in (drained_s, applied_s, evaluated_s):
            break
        time.sleep(1)
    clock_ok = evaluated_s is not None
    # late events (folded after the clock caught up) are swept at instants just past it, one
    # look per second: wait until none is left on the agenda and the clock has stood still for 5 s
    settled_at, last_clock = time.monotonic(), evaluator_clock(settings)
    while clock_ok and time.monotonic() - published_at < timeout_s:
        time.sleep(1)
        clock = evaluator_clock(settings)
        if clock != last_clock or late_entries_pending(settings, clock or 0):
            settled_at, last_clock = time.monotonic(), clock
        elif time.monotonic() - settled_at >= 5:
            break
    settled_s = round(settled_at - published_at, 1)

    def took(value: float | None) -> str:
        return f"after {value:.0f} s" if value is not None else f"NOT within {timeout_s:.0f} s"

    print(
        f"after the last publish: lag 0 {took(drained_s)}, every event applied {took(applied_s)}, "
        f"evaluator at the final tick {took(evaluated_s)}",
        flush=True,
    )
    return drained_s, applied_s, evaluated_s, settled_s


def check_segments(settings: Settings, live: pd.DataFrame) -> dict[str, Any]:
    """``customer-segments`` from the beginning, latest value per key, against the export."""
    latest: dict[str, dict[str, Any]] = {}
    raw = key_mismatches = 0
    for m in read_topic(settings, settings.topic(CUSTOMER_SEGMENTS), idle_timeout_s=5.0):
        raw += 1
        key = m.key.decode() if m.key is not None else ""
        doc = json.loads(m.value)
        key_mismatches += doc.get("customer_id") != key
        latest[key] = doc
    exported = set(live["customer_id"])
    rows = live.set_index("customer_id")
    score_mismatches = 0
    mismatch_examples: list[dict[str, Any]] = []
    for customer in sorted(exported & set(latest)):
        doc, row = latest[customer], rows.loc[customer]
        if pd.isna(row["r_score"]):
            continue
        expected = (int(row["r_score"]), int(row["f_score"]), int(row["m_score"]), row["rfm_segment"])
        got = (doc.get("r_score"), doc.get("f_score"), doc.get("m_score"), doc.get("rfm_segment"))
        if got != expected:
            score_mismatches += 1
            if len(mismatch_examples) < 5:
                mismatch_examples.append({"customer_id": customer, "export": expected, "profile": got})
    return {
        "messages": raw,
        "distinct_keys": len(latest),
        "export_customers": len(exported),
        "missing": len(exported - set(latest)),
        "missing_examples": sorted(exported - set(latest))[:5],
        "extra": len(set(latest) - exported),
        "key_mismatches": key_mismatches,
        "score_mismatches": score_mismatches,
        "score_mismatch_examples": mismatch_examples,
    }


def print_table(result: dict[str, Any]) -> None:
    print("\n| measure | figure |\n|---|---|")
    cal, rep, ovl = result["calibration"], result["replay"], result["overload"]
    rows = [
        (
            "capacity (calibration, 2 workers)",
            f"{cal['capacity_events_per_s']:,.0f} events/s over {cal['events']:,} generated events",
        ),
        (
            "replay",
            f"{rep['cdnow_events']:,} CDNOW + {rep['resends']:,} resends at {rep['speed']:,.0f}/s in {rep['seconds']:.0f} s",
        ),
        ("faults", ", ".join(f"{f['fault']}@{f['at_s']:.0f}s" for f in result["faults"]) or "none"),
        (
            "overload (generated customers)",
            f"{ovl['sent']:,} events in {ovl['seconds']:.0f} s = {ovl['achieved_events_per_s']:,.0f}/s ({ovl['achieved_factor_of_capacity']}x capacity, target {ovl['target_events_per_s']:,.0f}/s)",
        ),
        (
            "overload against what the workers sustained meanwhile",
            f"{ovl['sustained_events_per_s']:,.0f}/s consumed from its start to lag 0: producers at "
            f"{ovl['achieved_factor_of_sustained']}x that",
        ),
        ("time to drain (lag 0 after the last publish)", f"{result['drain_s']} s"),
        ("every event applied after the last publish", f"{result['applied_all_s']} s"),
        ("evaluator at the final tick after the last publish", f"{result['evaluator_s']} s"),
        (
            "every late event evaluated (agenda empty, clock still) after the last publish",
            f"{result['evaluator_settled_s']} s",
        ),
        (
            "customers: oracle / live",
            f"{result['oracle']['customers_expected']:,} / {result['oracle']['customers_live']:,}",
        ),
        (
            "customer-segments: messages / distinct keys",
            f"{result['segments']['messages']:,} / {result['segments']['distinct_keys']:,}",
        ),
        (
            "worker RSS max / final (MB)",
            ", ".join(f"{w['name']} {w['rss_max_mb']} / {w['rss_final_mb']}" for w in result["workers"]),
        ),
        (
            "worker restarts (SIGKILLed by us; other exits, codes)",
            ", ".join(
                f"{w['name']} {w['restarts']} ({w['sigkilled_by_harness']}; {w['other_exits']} {w['other_exit_codes']})"
                for w in result["workers"]
            ),
        ),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    print()
