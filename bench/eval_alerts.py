"""``make eval``, alerts: what the alerts topic would carry over a whole history, and why.

For CDNOW master and The Complete Journey, the worker's own segment evaluator
(``state.evaluator.evaluate``) is stepped through the whole history (one tick after the last event, as
``make bench``'s pure run). Reported per data set: alerts by kind, per month and per customer
per month; the crossings the model gates held back (``churn_risk`` fires only while the churn
model's recent prequential AUC > ``SEGSTREAM_ALERT_MIN_AUC`` and ECE < ``SEGSTREAM_ALERT_MAX_ECE``,
defaults 0.65 and 0.1); each churn band's observed churn rate (the labels of predictions made
while the customer was in the band); the churn model's prequential calibration, raw and served;
``segment_drift`` alerts by group. Writes ``bench/eval_alerts.json`` and prints Markdown.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segstream.sources import history_logs, load_cdnow, load_completejourney
from state.customer.rfm import DAY_MS
from state.evaluator.config import EvaluatorConfig
from state.evaluator.evaluate import Evaluator
from state.evaluator.read_model import summary_record
from state.segments.segments import load_preset

RESULTS = Path(__file__).with_name("eval_alerts.json")
MONTH_DAYS = 365.25 / 12


def evaluate(name: str, history: pd.DataFrame) -> dict[str, Any]:
    logs = history_logs(history)
    first = min(e.occurred_at_ms for log in logs.values() for e in log)
    end = max(e.occurred_at_ms for log in logs.values() for e in log) + 1
    evaluator = Evaluator(EvaluatorConfig(load_preset("rfm11")))
    started = time.perf_counter()
    evaluator.advance(end, logs)
    seconds = time.perf_counter() - started
    summary = summary_record(evaluator.summary())  # the saved document: this file writes it as JSON
    churn, gates = summary["churn"], summary["alert_gates"]
    customers, months = int(summary["customers"]), (end - first) / DAY_MS / MONTH_DAYS
    kinds = Counter(a.kind for a in evaluator.alerts)
    return {
        "data_set": name,
        "customers": customers,
        "months": round(months, 2),
        "alerts": {
            k: {
                "count": n,
                "per_month": round(n / months, 1),
                "per_customer_per_month": round(n / customers / months, 4),
            }
            for k, n in sorted(kinds.items())
        },
        "held_back_by_gate": dict(evaluator.held_back),
        "gates_at_end": gates,
        "band_outcomes": churn["band_outcomes"],
        "churn_prequential": {
            "auc": churn["auc"],
            "examples": churn["examples"],
            "raw": {k: churn["calibration"]["raw"][k] for k in ("ece", "brier")},
            "served": {k: churn["calibration"]["served"][k] for k in ("ece", "brier")},
            "recent": churn["recent"],
        },
        "segment_drift_by_group": dict(
            Counter(a.customer_id for a in evaluator.alerts if a.kind == "segment_drift").most_common()
        ),
        "evaluator_seconds": round(seconds, 1),
    }


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| data set | kind | alerts | a month | per customer per month |",
        "|---|---|---:|---:|---:|",
    ]
    for r in results:
        for kind, a in r["alerts"].items():
            per_customer = "(groups)" if kind == "segment_drift" else f"{a['per_customer_per_month']:.4f}"
            lines.append(
                f"| {r['data_set']} | {kind} | {a['count']:,} | {a['per_month']:,.1f} | {per_customer} |"
            )
        for kind, n in r["held_back_by_gate"].items():
            lines.append(f"| {r['data_set']} | {kind} held back by the gate | {n:,} | | |")
    lines += ["", "| data set | band at prediction | predictions labelled | churned | observed churn rate |"]
    lines.append("|---|---|---:|---:|---:|")
    for r in results:
        for band, b in r["band_outcomes"].items():
            rate = "n/a" if b["observed_churn_rate"] is None else f"{b['observed_churn_rate']:.3f}"
            lines.append(f"| {r['data_set']} | {band} | {b['predictions']:,} | {b['churned']:,} | {rate} |")
    return "\n".join(lines)


def main() -> None:
    results = []
    for name, load in (("CDNOW master", load_cdnow), ("The Complete Journey", load_completejourney)):
        result = evaluate(name, load())
        results.append(result)
        print(f"{name}: {json.dumps(result['alerts'])} in {result['evaluator_seconds']}s", flush=True)
    RESULTS.write_text(json.dumps({"results": results}, indent=2) + "\n")
    print()
    print(markdown(results))


if __name__ == "__main__":
    main()
