"""Second round of ``bench/uplift_selection.py`` (``--arms``): how the uplift model's arms learn.

Candidates, rule and the reason for the round: ``bench/uplift_selection.py``'s docstring. Runs each
candidate of ``bench/uplift_candidates.py`` through the campaigns in time order up to the first
held-out campaign (none of its exposures scored or learned) and scores the validation campaigns;
writes the ``arms`` key of ``bench/uplift_selection.json`` (the first round's keys are kept).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.eval_uplift import batch_uplift, online_uplift
from bench.uplift_candidates import CANDIDATES
from bench.uplift_checks import within, within_interval
from bench.uplift_data import SEED, validation_data

TIE = 0.0002


def hypothesis(
    exposures: Any,
    x: np.ndarray,
    names: tuple[str, ...],
    segment: np.ndarray,
    segments: Any,
    validation_ids: list[str],
    before: np.ndarray,
) -> dict[str, Any]:
    """The live model's treatment arm at the first validation campaign against a batch logistic
    regression on the same treated rows: size of the standardised weights, mean probability."""
    y = exposures["responded"].to_numpy()
    t = (exposures["variant"] != "control").to_numpy()
    val = exposures["campaign_id"].isin(validation_ids).to_numpy()
    _, _, model = online_uplift(exposures, x, segment, names, segments, stop_at=validation_ids)
    batch = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(
        x[before & t], y[before & t]
    )
    online_w, batch_w = np.array(model.treatment.scorer()["weights"]), batch[-1].coef_[0]
    shown = ("log_net_spend", "log_frequency", "p_alive", "bought_covered_before", "log_coupons")
    return {
        "treated_training_exposures": int((before & t).sum()),
        "sum_abs_standardised_weights": {
            "online": round(float(np.abs(online_w).sum()), 2),
            "batch": round(float(np.abs(batch_w).sum()), 2),
        },
        "weights": {
            n: {
                "online": round(float(online_w[names.index(n)]), 2),
                "batch": round(float(batch_w[names.index(n)]), 2),
            }
            for n in shown
        },
        "mean_probability_validation_treated": {
            "online": round(float(model.treatment.scores(x[val & t]).mean()), 3),
            "batch": round(float(batch.predict_proba(x[val & t])[:, 1].mean()), 3),
            "observed": round(float(y[val & t].mean()), 3),
        },
    }


def main() -> dict[str, Any]:
    began = time.perf_counter()
    data = validation_data()
    exposures, x, segment, names, feats = data.exposures, data.x, data.segment, data.names, data.feats
    test_ids, validation_ids, val = data.test_ids, data.validation_ids, data.val
    y, t, camp, w = data.y, data.t, data.camp, data.w
    y_all = exposures["responded"].to_numpy()
    t_all = (exposures["variant"] != "control").to_numpy()
    held_out = exposures["campaign_id"].isin(test_ids).to_numpy()

    def figures(u: np.ndarray) -> dict[str, Any]:
        return {
            "qini_within": round(within(camp, u, t, y), 5),
            "qini_within_interval": [round(v, 5) for v in within_interval(camp, u, t, y, None, 200, SEED)],
            "weighted_qini_within": round(within(camp, u, t, y, w), 5),
            "weighted_qini_within_interval": [
                round(v, 5) for v in within_interval(camp, u, t, y, w, 200, SEED)
            ],
        }

    rows = []
    for key, make in CANDIDATES.items():
        start = time.perf_counter()
        u, _, model = online_uplift(
            exposures, x, segment, names, feats["segments"], stop_at=test_ids, make=make
        )
        assert np.isnan(u[held_out]).all()
        row = {"candidate": key, **figures(u[val]), "seconds": round(time.perf_counter() - start, 1)}
        if hasattr(model, "treatment"):
            row["prequential_auc"] = {
                "treatment": model.treatment._report()["auc"],
                "control": model.control._report()["auc"],
            }
        rows.append(row)
        print(
            f"  {key:36s} Qini within {row['qini_within']:+.5f} {row['qini_within_interval']}  weighted "
            f"{row['weighted_qini_within']:+.5f} {row['weighted_qini_within_interval']}  {row['seconds']}s",
            flush=True,
        )
    best = max(r["qini_within"] for r in rows)
    chosen = next(r for r in rows if r["qini_within"] >= best - TIE)
    current = rows[0]
    adopt = chosen["qini_within_interval"][0] > current["qini_within"]
    before = ~val & ~held_out
    reference = {
        "batch_two_model_logistic_regression_learned_before_validation": figures(
            batch_uplift(x, y_all, t_all, before, val)
        )
    }
    out = {
        "hypothesis": hypothesis(exposures, x, names, segment, feats["segments"], validation_ids, before),
        "candidates": rows,
        "rule": "highest plain within-campaign Qini on the validation campaigns; within 0.0002 of the best, "
        "the earliest listed; replaces the live model only if its interval's lower end is above the current "
        "model's plain Qini",
        "chosen": chosen["candidate"],
        "rule_adopts_it": bool(adopt),
        "live": "no: it ranked worse than random within the held-out campaigns (bench/eval_response.py), "
        "so the live default stayed one pass (a go/no-go made on held-out figures; README, Uplift)",
        "plain_and_weighted_disagree": bool(chosen["weighted_qini_within"] < current["weighted_qini_within"]),
        "for_scale_not_a_candidate": reference,
        "held_out_looked_at_before": "yes: the first round's online and batch held-out figures "
        "(bench/eval_response.json) were seen before this round; the held-out campaigns are not a virgin test set",
        "date": time.strftime("%Y-%m-%d"),
        "runtime_seconds": round(time.perf_counter() - began, 1),
    }
    print(f"chosen: {chosen['candidate']} (the rule adopts it: {adopt}; not live after the held-out run)")
    path = Path(__file__).with_name("uplift_selection.json")
    data = json.loads(path.read_text())
    data["arms"] = out
    path.write_text(json.dumps(data, indent=2) + "\n")
    return out
