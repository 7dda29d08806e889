"""The Markdown tables of ``bench/scale.py``: each figure beside the scale issue's target."""

from __future__ import annotations

from typing import Any

# the scale issue's targets
REDIS_BYTES_TARGET = 600  # per customer at 1M customers
FLAT_WITHIN = 0.20  # Redis bytes per customer from ~4 to ~40 events per customer
INSTANT_GROWTH_TARGET = 2.0  # an instant's cost at 1M vs at 10k, same new events
TWO_WORKERS_TARGET = 1.7  # 2 workers vs 1 on 4 partitions


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _steady(run: dict[str, Any]) -> str:
    ratio = run["two_vs_one_worker_ingest_steady"]
    return "both never folding at once" if ratio is None else f"{ratio:.2f}x once both fold"


def _two_workers(run: dict[str, Any]) -> str:
    if "two_workers" not in run:
        return "not run (`--no-two-workers`)"
    return (
        f"{_n(run['two_workers']['ingest_events_per_s'])} ev/s "
        f"({run['two_vs_one_worker_ingest']:.2f}x; {_steady(run)})"
    )


def _evaluation_rss(one: dict[str, Any]) -> str:
    peak = one.get("evaluation_process_peak_rss_mb")  # runs before 2026-11-30 10:30 did not read it
    return "; evaluation process not read" if peak is None else f" + {peak:,.0f} MB evaluation process"


def main_table(runs: list[dict[str, Any]]) -> str:
    """One row per population."""
    sparse = [r for r in runs if r["preset"] == "sparse"]
    smallest = min(sparse, key=lambda r: r["customers"]) if sparse else None
    lines = [
        "| customers (events/customer) | events | ingest, 1 worker | 2 workers (target ≥ "
        f"{TWO_WORKERS_TARGET}x) | whole history evaluated | quiet grid instant | grid instant with new events "
        f"(vs smallest) | live instant off the grid with new events (vs smallest; target ≤ "
        f"{INSTANT_GROWTH_TARGET:g}x at 1M); quiet | Redis B/customer after ingest / "
        f"after evaluation and the dedupe window (target ≤ {REDIS_BYTES_TARGET} at 1M) | peak RSS: worker + "
        "evaluation process |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        one = r["one_worker"]
        busy, news = one["instant_with_new_events_s"], one["instants_with_new_events"][0]["new_events"]
        quiet, ticked = one["quiet_instant_s"], one["quiet_instant_tick_with_offsets"]["tick_s"]
        live, live_quiet = one["live_instant_with_new_events_s"], one["live_quiet_instant_s"]
        growth = live_growth = ""
        if smallest is not None and r["preset"] == "sparse" and r is not smallest:
            growth = f"; {busy / smallest['one_worker']['instant_with_new_events_s']:.1f}x"
            live_growth = f"; {live / smallest['one_worker']['live_instant_with_new_events_s']:.1f}x"
        lines.append(
            f"| {_n(r['customers'])} {r['preset']} ({r['events_per_customer']:.1f}) | {_n(r['events'])} "
            f"| {_n(one['ingest_events_per_s'])} ev/s | {_two_workers(r)} | {one['evaluate_history']['tick_s']:.1f} s "
            f"| {quiet:.2f} s ({ticked:.2f} s with offsets) "
            f"| {busy:.2f} s ({_n(news)} events{growth}) "
            f"| {live:.2f} s ({_n(news)} events{live_growth}); {live_quiet:.2f} s "
            f"| {_n(one['redis_bytes_per_customer_after_ingest'])} / {_n(one['redis_bytes_per_customer'])} "
            f"| {one['worker_peak_rss_mb']:.0f} MB{_evaluation_rss(one)} |"
        )
    return "\n".join(lines)


def flatness(runs: list[dict[str, Any]]) -> str | None:
    """Redis bytes per customer, dense vs sparse at the same number of customers."""
    for dense in (r for r in runs if r["preset"] == "dense"):
        sparse = next(
            (r for r in runs if r["preset"] == "sparse" and r["customers"] == dense["customers"]), None
        )
        if sparse is None:
            continue
        a, b = (
            sparse["one_worker"]["redis_bytes_per_customer"],
            dense["one_worker"]["redis_bytes_per_customer"],
        )
        return (
            f"Redis bytes per customer at {dense['customers']:,} customers: {a:,.0f} at "
            f"{sparse['events_per_customer']:.1f} events/customer, {b:,.0f} at {dense['events_per_customer']:.1f} "
            f"({b / a:.1f}x; target: flat within {FLAT_WITHIN:.0%})"
        )
    return None


def kinds_table(runs: list[dict[str, Any]], top: int = 8) -> str:
    """Bytes per customer by key kind (MEMORY USAGE), largest first, per population."""
    names: list[str] = []
    for r in runs:
        for kind in list(r["one_worker"]["memory_usage_by_kind"])[:top]:
            if kind not in names:
                names.append(kind)
    header = "| key kind | " + " | ".join(f"{_n(r['customers'])} {r['preset']}" for r in runs) + " |"
    lines = [header, "|---|" + "---:|" * len(runs)]
    for kind in names:
        cells = []
        for r in runs:
            row = r["one_worker"]["memory_usage_by_kind"].get(kind)
            cells.append(f"{row['bytes_per_customer']:,.0f}" if row else "")
        lines.append(f"| `{kind}` | " + " | ".join(cells) + " |")
    totals = [
        sum(v["bytes_per_customer"] for v in r["one_worker"]["memory_usage_by_kind"].values()) for r in runs
    ]
    lines.append("| all keys (MEMORY USAGE) | " + " | ".join(f"{t:,.0f}" for t in totals) + " |")
    return "\n".join(lines)
