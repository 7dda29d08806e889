"""Cluster quality per model version over whole histories: what ``segstream models`` shows, at scale.

For CDNOW master and The Complete Journey (with its campaign events, so response rates exist),
the worker's own segment evaluator (``state.evaluator.evaluate``) is stepped through the whole history (one
tick after the last event). Every cluster model version it publishes is assessed once
(``state.evaluator.cluster_quality``: silhouette and Davies-Bouldin on a seeded reservoir sample of 2,000
buyers, dispersion, business separation over all buyers). Reported: every version's figures,
the last version's clusters, and the time the assessments took against the evaluator's.
Writes ``bench/eval_quality.json`` and prints Markdown.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import state.evaluator.evaluate as evaluate_module
from segstream.campaign_replay import campaign_wire_events
from segstream.campaigns import load_completejourney_campaigns
from segstream.sources import history_logs, load_cdnow, load_completejourney
from state.evaluator.config import EvaluatorConfig
from state.evaluator.evaluate import Evaluator
from state.segments.segments import load_preset
from streams.campaign_contract import CampaignEvent, decode_campaign_event
from streams.outputs import rfc3339

RESULTS = Path(__file__).with_name("eval_quality.json")
_assess = evaluate_module.assess_version
_spent: list[float] = []


def _timed_assess(*args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    try:
        return _assess(*args, **kwargs)
    finally:
        _spent.append(time.perf_counter() - started)


def evaluate(name: str, history: pd.DataFrame, events: list[CampaignEvent]) -> dict[str, Any]:
    logs = history_logs(history)
    end = max(e.occurred_at_ms for log in logs.values() for e in log) + 1
    base = EvaluatorConfig(load_preset("rfm11"))
    config = dataclasses.replace(base, quality=dataclasses.replace(base.quality, versions_kept=1000))
    evaluator = Evaluator(config)
    _spent.clear()
    started = time.perf_counter()
    evaluator.advance(end, logs, events)
    seconds = time.perf_counter() - started
    versions = evaluator.cluster_quality
    silhouettes = [v["silhouette"] for v in versions if v["silhouette"] is not None]
    return {
        "data_set": name,
        "campaign_events": len(events),
        "versions": versions,
        "silhouette_min_median_max": [min(silhouettes), statistics.median(silhouettes), max(silhouettes)],
        "evaluator_seconds": round(seconds, 1),
        "assessment_seconds": round(sum(_spent), 2),
        "assessments": len(_spent),
    }


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| data set | versions | last version (published) | k | silhouette | Davies-Bouldin | within share "
        "| value share spread | churn share spread | response rate spread | silhouette min / median / max "
        "| assessments: s (of evaluator s) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        v = r["versions"][-1]
        low, mid, high = r["silhouette_min_median_max"]
        lines.append(
            f"| {r['data_set']} | {len(r['versions'])} | {v['model_version']} ({rfc3339(v['at_ms'])[:10]}) "
            f"| {v['k']} | {_f(v['silhouette'])} | {_f(v['davies_bouldin'])} | {_f(v['within_share'])} "
            f"| {_f(v['spread']['value_share'])} | {_f(v['spread']['churn_share'])} "
            f"| {_f(v['spread']['response_rate'])} | {low:.3f} / {mid:.3f} / {high:.3f} "
            f"| {r['assessment_seconds']} ({r['evaluator_seconds']}) |"
        )
    lines += [
        "",
        "| data set | cluster | name | buyers | dispersion | value share | churn share | response rate (exposures) |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for c in r["versions"][-1]["clusters"]:
            lines.append(
                f"| {r['data_set']} | {c['cluster']} | {c['name']} | {c['customers']:,} | {_f(c['dispersion'])} "
                f"| {_f(c['value_share'])} | {_f(c['churn_share'])} | {_f(c['response_rate'])} "
                f"({c['exposures']:,}) |"
            )
    return "\n".join(lines)


def main() -> None:
    evaluate_module.assess_version = _timed_assess  # type: ignore[assignment]
    frame = load_completejourney_campaigns()
    now_ms = int(time.time() * 1000)
    events = [decode_campaign_event(value, now_ms=now_ms) for _, value in campaign_wire_events(frame)]
    results = []
    for name, history, campaign in (
        ("CDNOW master", load_cdnow(), []),
        ("The Complete Journey", load_completejourney(), events),
    ):
        result = evaluate(name, history, campaign)
        results.append(result)
        print(f"{name}: {len(result['versions'])} versions in {result['evaluator_seconds']}s", flush=True)
    RESULTS.write_text(json.dumps({"results": results}, indent=2) + "\n")
    print()
    print(markdown(results))


if __name__ == "__main__":
    main()
