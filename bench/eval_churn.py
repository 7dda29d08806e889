"""``make eval``, churn: the online churn model against batch baselines at a fixed cut date.

For CDNOW master and The Complete Journey, with the worker's own segment evaluator
(``state.evaluator.evaluate``, the code the worker runs) stepped through the history:

1. at ``train_at = cut - 90 days`` the features of every buyer (``state.models.churn_features.churn_matrix``:
   RFM, behaviour, BG/NBD probability alive and expected purchases, named segment) are taken;
   their label is "no purchase in ``[train_at, cut)``";
2. at ``cut`` the same features of every buyer are the test set; the online model's churn
   probability (the model as it stood at ``cut``, learned only from batches labelled before)
   and ``1 - P(alive)`` (the lifetime model at ``cut``) are their scores; the label is "no
   purchase in ``[cut, cut + 90 days)``";
3. the batch baselines, the seed notebooks' method: sklearn logistic regression (standardised
   features) and random forest, trained on step 1's features and labels, score step 2's.

Same features, same dates for all four. ROC AUC on the test set; target (reported, not
asserted): the online model within 0.02 of the best batch baseline.

Calibration on the same test set (``state.models.calibration``): Brier score, expected calibration
error (ECE: 10 equal-width bins of predicted probability, ``sum n_bin / N * |mean predicted -
observed rate|``) and the reliability table, for the online model as served (its raw logistic
probability through its online Platt map), the raw probability, and every baseline; target:
ECE <= 0.05 for the served model. The live (prequential) figures of the same run, every
labelled batch up to the cut, scored before its labels were known, are reported beside them.
Writes ``bench/eval_churn.json`` and prints Markdown.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segstream.sources import history_logs, load_cdnow, load_completejourney
from state.customer.rfm import DAY_MS
from state.evaluator.config import EvaluatorConfig
from state.evaluator.evaluate import Evaluator
from state.evaluator.predict import alive_and_expected
from state.models.calibration import calibration_figures
from state.models.churn_features import churn_matrix
from state.segments.segments import load_preset

RESULTS = Path(__file__).with_name("eval_churn.json")
HORIZON_MS = 90 * DAY_MS
SEED = 7
TARGET_GAP = 0.02
TARGET_ECE = 0.05
CUTS = {"CDNOW master": "1998-01-01", "The Complete Journey": "2017-09-15"}


def snapshot(evaluator: Evaluator) -> dict[str, Any]:
    """Every buyer's churn features and the two online scores at the evaluator's clock."""
    at = evaluator.clock_ms
    assert at is not None and evaluator.lifetime is not None, "no lifetime model yet at this date"
    pop = evaluator.population
    rows = pop.buyers()
    cols = pop.columns(rows)
    alive, expected = alive_and_expected(evaluator.lifetime, cols, at)
    segment = evaluator.segment_index(cols)
    x = churn_matrix(cols, at, alive, expected, segment, len(evaluator.churn.segments))
    return {
        "rows": rows,
        "x": x,
        "online": evaluator.churn.scores(x),
        "online_raw": evaluator.churn.raw_scores(x),
        "p_alive": alive,
    }


def churned(evaluator: Evaluator, rows: np.ndarray[Any, Any], since_ms: int) -> np.ndarray[Any, Any]:
    """No purchase at or after ``since_ms`` (up to the evaluator's clock)."""
    return np.asarray(evaluator.population.column("last_ms")[rows] < since_ms)


def evaluate(name: str, history: pd.DataFrame) -> dict[str, Any]:
    cut = int(pd.Timestamp(CUTS[name], tz="UTC").value // 1_000_000)
    train_at = cut - HORIZON_MS
    logs = history_logs(history)
    evaluator = Evaluator(EvaluatorConfig(load_preset("rfm11")))
    started = time.perf_counter()
    evaluator.advance(train_at, logs)
    train = snapshot(evaluator)
    evaluator.advance(cut, logs)
    y_train = churned(evaluator, train["rows"], train_at)
    test = snapshot(evaluator)
    report_at_cut = evaluator.churn.report()
    evaluator.advance(cut + HORIZON_MS, logs)
    y_test = churned(evaluator, test["rows"], cut)
    seconds = time.perf_counter() - started

    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    forest = RandomForestClassifier(n_estimators=300, min_samples_leaf=5, random_state=SEED, n_jobs=-1)
    scores = {
        "online": test["online"],
        "online_raw": test["online_raw"],
        "one_minus_p_alive": 1 - test["p_alive"],
        "logistic_regression": logistic.fit(train["x"], y_train).predict_proba(test["x"])[:, 1],
        "random_forest": forest.fit(train["x"], y_train).predict_proba(test["x"])[:, 1],
    }
    aucs = {k: roc_auc_score(y_test, v) for k, v in scores.items()}
    calibration = {k: calibration_figures(y_test, v).to_json() for k, v in scores.items()}
    best = max(aucs["logistic_regression"], aucs["random_forest"])
    return {
        "data_set": name,
        "cut": CUTS[name],
        "train_at": pd.Timestamp(train_at, unit="ms", tz="UTC").strftime("%Y-%m-%d"),
        "horizon_days": HORIZON_MS // DAY_MS,
        "train_customers": len(y_train),
        "train_churned": int(y_train.sum()),
        "test_customers": len(y_test),
        "test_churned": int(y_test.sum()),
        "auc": {k: round(float(v), 4) for k, v in aucs.items()},
        "best_batch": round(float(best), 4),
        "online_gap": round(float(best - aucs["online"]), 4),
        "online_within_target": bool(best - aucs["online"] <= TARGET_GAP),
        "calibration": calibration,
        "online_ece_within_target": bool(calibration["online"]["ece"] <= TARGET_ECE),
        "online_model_at_cut": {
            "version": report_at_cut["version"],
            "labelled_examples": report_at_cut["examples"],
            "prequential_auc": report_at_cut["auc"],
            "prequential_calibration": {
                k: {m: report_at_cut["calibration"][k][m] for m in ("brier", "ece")}
                for k in ("raw", "served")
            },
            "recent": report_at_cut["recent"],
            "platt": report_at_cut["calibration"]["platt"],
        },
        "lifetime_model_version_at_cut": evaluator.lifetime.version if evaluator.lifetime else None,
        "evaluator_seconds": round(seconds, 1),
    }


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| data set | cut date | test customers (churned) | online River | 1 - P(alive) | sklearn LR | sklearn RF | online - best batch |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    calibration = [
        "",
        "| data set | scorer | ECE | Brier | live (prequential, up to the cut): ECE | Brier |",
        "|---|---|---:|---:|---:|---:|",
    ]
    reliability = [
        "",
        "| data set | scorer | " + " | ".join(f"{i / 10:.1f}-{(i + 1) / 10:.1f}" for i in range(10)) + " |",
    ]
    reliability.append("|---|---|" + "---:|" * 10)
    for r in results:
        a = r["auc"]
        lines.append(
            f"| {r['data_set']} | {r['cut']} | {r['test_customers']:,} ({r['test_churned']:,}) | {a['online']:.3f} "
            f"| {a['one_minus_p_alive']:.3f} | {a['logistic_regression']:.3f} | {a['random_forest']:.3f} "
            f"| {-r['online_gap']:+.3f} |"
        )
        live = r["online_model_at_cut"]["prequential_calibration"]
        for scorer, label in SCORERS.items():
            c = r["calibration"][scorer]
            kept = {"online": live["served"], "online_raw": live["raw"]}.get(scorer)
            extra = f"{kept['ece']:.3f} | {kept['brier']:.3f}" if kept else "- | -"
            calibration.append(f"| {r['data_set']} | {label} | {c['ece']:.3f} | {c['brier']:.3f} | {extra} |")
            cells = [
                "-"
                if row["observed_rate"] is None
                else f"{row['observed_rate']:.2f} ({row['predictions']:,.0f})"
                for row in c["reliability"]
            ]
            reliability.append(f"| {r['data_set']} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines + calibration + reliability)


SCORERS = {
    "online": "online River, served (Platt)",
    "online_raw": "online River, raw",
    "one_minus_p_alive": "1 - P(alive)",
    "logistic_regression": "sklearn LR",
    "random_forest": "sklearn RF",
}


def main() -> None:
    results = []
    for name, load in (("CDNOW master", load_cdnow), ("The Complete Journey", load_completejourney)):
        result = evaluate(name, load())
        results.append(result)
        print(f"{name}: {json.dumps(result['auc'])} in {result['evaluator_seconds']}s", flush=True)
    meta = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "seed": SEED,
        "target": f"online churn AUC within {TARGET_GAP} of the best batch baseline; "
        f"served online ECE <= {TARGET_ECE} (10 equal-width bins)",
        "baselines": "sklearn StandardScaler + LogisticRegression(max_iter=2000); "
        "RandomForestClassifier(n_estimators=300, min_samples_leaf=5)",
    }
    RESULTS.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print()
    print(markdown(results))
    for r in results:
        verdict = "meets" if r["online_within_target"] else "misses"
        ece = r["calibration"]["online"]["ece"]
        print(
            f"{r['data_set']}: online {verdict} the AUC target (gap to the best batch baseline "
            f"{r['online_gap']:+.3f}); served ECE {ece:.3f} "
            f"{'meets' if r['online_ece_within_target'] else 'misses'} the ECE target (<= {TARGET_ECE})"
        )


if __name__ == "__main__":
    main()
