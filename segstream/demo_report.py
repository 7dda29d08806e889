"""What ``segstream demo`` prints once the replay is in Redis: the tables and model readouts.

The replay totals and RFM summary, the live segments and clusters (with counters read from the
worker's ``/metrics``), the lifetime and churn models' predictions by segment and the alert rates.
Apart from :mod:`segstream.demo` (which starts, feeds and watches the pipeline) because this is
formatting only: it reads the stores and the worker's pages, and starts nothing.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pandas as pd

from agents.settings import Settings
from segstream.export import with_predictions
from segstream.model_lines import alert_gate_lines, churn_calibration_lines
from segstream.replay import ReplayReport
from segstream.worker_http import get_page
from state.adapters.redis_profiles import RedisProfileStore
from state.customer.store import Stats
from state.evaluator.predict import LifetimeModel
from state.evaluator.read_model import Summary

__all__ = [
    "alert_rate_lines",
    "changes_published",
    "metric_counts",
    "print_live_segments",
    "print_predictions",
    "print_summary",
    "saved_records",
]


def metric_counts(settings: Settings, metric: str, label: str) -> dict[str, int]:
    """A labelled counter of the worker's /metrics page, by label value (summed over its other labels)."""
    text = get_page(settings, "/metrics").decode()
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            value = line.split(f'{label}="', 1)[1].split('"', 1)[0]
            counts[value] = counts.get(value, 0) + int(float(line.rsplit(" ", 1)[1]))
    return counts


def _changes_by_reason(settings: Settings) -> dict[str, int]:
    """Segment changes the worker published, by reason."""
    return metric_counts(settings, "segstream_segment_changes_total", "reason")


async def saved_records(settings: Settings) -> list[dict[str, Any]]:
    """The evaluator's saved per-customer records (profile, predictions), as plain dicts."""
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        saved = await profiles.load()
    finally:
        await profiles.close()
    return [dict(r) for r in saved.records] if saved else []


def changes_published(settings: Settings) -> int:
    """Segment changes the worker published so far (0 while its web server is not up)."""
    try:
        return sum(_changes_by_reason(settings).values())
    except OSError:
        return 0


def print_summary(frame: pd.DataFrame, stats: Stats, report: ReplayReport, elapsed: float) -> None:
    """Replay totals, end-to-end rate, and the RFM summary and top customers of ``frame``."""
    applied = stats.applied
    print()
    print(
        f"published {report.sent:,} events in {report.seconds:.1f}s; "
        f"{applied:,} applied, {stats.duplicates:,} duplicates, "
        f"{stats.invalid:,} dead-lettered"
    )
    print(f"end to end (publish -> Redis): {applied / elapsed:,.0f} events/s over {elapsed:.1f}s")
    as_of = frame["last_purchase_at"].max()
    print(f"customers: {len(frame):,}   as of (event-time watermark): {as_of:%Y-%m-%d}")
    print()
    summary = frame[["recency_days", "frequency", "monetary"]].astype(float).describe(percentiles=[0.5, 0.9])
    print("RFM summary")
    print(summary.loc[["mean", "min", "50%", "90%", "max"]].round(2).to_string())
    print()
    top = frame.nlargest(5, "monetary")[["customer_id", "frequency", "monetary", "recency_days"]]
    print("top customers by net spend")
    print(top.to_string(index=False))


def print_live_segments(summary: Summary, settings: Settings, frame: pd.DataFrame) -> None:
    """Segment changes and moves published, the online clusters, and the top customer's page."""
    counts = _changes_by_reason(settings)
    print(
        f"\nsegment changes published to segment-changes: {sum(counts.values()):,} "
        f"({', '.join(f'{reason} {n:,}' for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))}); "
        f"cut-point version {summary.cutpoint_version}, cluster model version {summary.model_version}"
    )
    moves = metric_counts(settings, "segstream_segment_moves_total", "type")
    print(
        f"segment moves published to segment-moves (audience entries and exits): {sum(moves.values()):,} "
        f"(entered {moves.get('entered', 0):,}, exited {moves.get('exited', 0):,})"
    )
    if summary.clusters:  # none before the cluster model's first version (a short --limit)
        clusters = pd.DataFrame(msgspec.to_builtins(summary.clusters)).set_index("cluster")
        print("online clusters (River k-means, stable ids, streaming elbow)")
        columns = [
            "name",
            "customers",
            "share",
            "mean_recency_days",
            "mean_frequency",
            "mean_monetary",
            "value_share",
        ]
        print(clusters[columns].to_string())
    top = str(frame.nlargest(1, "monetary")["customer_id"].iloc[0])
    path = f"/customers/{top}"
    print(f"\nGET http://127.0.0.1:{settings.web_port}{path}\n{get_page(settings, path).decode()}")


def print_predictions(
    summary: Summary, records: list[dict[str, Any]], settings: Settings, *, months: float
) -> None:
    """The lifetime and churn models the evaluator keeps, and their predictions by segment."""
    lifetime = summary.lifetime
    if lifetime is None:
        print("\nlifetime model: not fitted yet (needs 100 buyers, 10 repeat buyers, four weeks of history)")
        return
    model = LifetimeModel.from_params(lifetime)
    churn = summary.churn
    auc = f"{churn.auc:.3f}" if churn.auc is not None else "n/a"
    print(f"\nlifetime model (refitted every 28 days of event time): {model.describe()} (weeks)")
    print(
        f"churn model (River, horizon {churn.horizon_days:g} days): version {churn.version}, "
        f"prequential ROC AUC {auc} over {churn.examples:,} labelled predictions"
    )
    customers = pd.DataFrame(
        {
            "customer_id": [r["customer_id"] for r in records],
            "rfm_segment": pd.Series(
                [r["profile"][3] if r.get("profile") else None for r in records], dtype=str
            ),
        }
    )
    frame = with_predictions(customers, records, summary)
    by_segment = frame.groupby("rfm_segment")[
        ["p_alive", "churn_probability", "expected_purchases_90d", "clv"]
    ]
    print("mean predictions by segment (p_alive, churn probability, expected purchases in 90 days, CLV)")
    print(by_segment.mean().astype(float).sort_values("p_alive", ascending=False).round(3).to_string())
    bands = frame["churn_band"].value_counts().reindex(["Low", "Medium", "High"], fill_value=0)
    print(f"churn bands: {', '.join(f'{band} {n:,}' for band, n in bands.items())}")
    for line in churn_calibration_lines(churn):
        print(line)
    for line in alert_gate_lines(summary.alert_gates):
        print(line)
    alerts = metric_counts(settings, "segstream_alerts_total", "kind")
    for line in alert_rate_lines(alerts, summary.customers, months):
        print(line)


def alert_rate_lines(alerts: dict[str, int], customers: int, months: float) -> list[str]:
    """Alerts published, by kind, with what a marketer would face: per month, and per customer per month.

    >>> for line in alert_rate_lines({"overdue": 60, "segment_drift": 3}, 100, 6.0)[1:]:
    ...     print(line)
      overdue             60  (10.0 a month, 0.100 per customer per month)
      segment_drift        3  (0.5 a month; about segments and clusters, not customers)
    """
    total = sum(n for k, n in alerts.items() if k != "segment_drift")
    lines = [
        f"alerts published to alerts over {months:.1f} months of history for {customers:,} customers "
        f"(customer alerts: {total:,}, {total / max(customers, 1) / months:.3f} per customer per month):"
    ]
    if not alerts:
        lines.append("  none")
    for kind, n in sorted(alerts.items()):
        if kind == "segment_drift":
            lines.append(
                f"  {kind:<16} {n:>5,}  ({n / months:.1f} a month; about segments and clusters, not customers)"
            )
        else:
            lines.append(
                f"  {kind:<16} {n:>5,}  ({n / months:.1f} a month, {n / max(customers, 1) / months:.3f} per customer per month)"
            )
    return lines
