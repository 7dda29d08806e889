"""Report of ``bench/eval_response.py`` (``make eval``, campaign response): counts and what is printed.

The ``counts`` and ``ab_verdicts`` sections of ``bench/eval_response.json``, the Markdown table of
the AUCs, and the printed report (the tables, the uplift's table from ``bench/eval_uplift.py``,
the explanation, the A/B verdicts and the readout rows of two campaigns). Kept apart from the data
and the models: these functions only shape figures already computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bench import eval_uplift
from bench.response_data import ms
from state.campaigns.abtest import VERDICTS

SHOWN_CAMPAIGNS = ("8", "16")  # readout rows printed: a Type A campaign and the first test campaign


def ab_verdicts(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """How many non-control readout rows got each verdict, per campaign and per campaign x segment."""
    treatment_rows = table[table["variant"] != "control"]
    return {
        scope: {v: int(((treatment_rows["verdict"] == v) & mask).sum()) for v in VERDICTS if v != "control"}
        for scope, mask in (
            ("campaign (segment all)", treatment_rows["segment"] == "all"),
            ("campaign x segment", treatment_rows["segment"] != "all"),
        )
    }


def exposure_counts(
    exposures: pd.DataFrame,
    y: np.ndarray,
    treated: np.ndarray,
    known: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    test_ids: list[str],
    final_at_split: np.ndarray,
    readout_rows: int,
) -> dict[str, Any]:
    """The ``counts`` of the run's metadata: exposures, labels, unknown households, the split."""
    return {
        "exposures": len(exposures),
        "responded": int(y.sum()),
        "treatment": int(treated.sum()),
        "control": int((~treated).sum()),
        "unknown_kept": int((~known).sum()),
        "unknown_by_variant": {
            "treatment": int((~known & treated).sum()),
            "control": int((~known & ~treated).sum()),
        },
        "unknown_in_campaigns_before_history": int(
            (~known & exposures["start_ms"].lt(ms("2017-01-01")).to_numpy()).sum()
        ),
        "train": {
            "campaigns": int(exposures.loc[train, "campaign_id"].nunique()),
            "exposures": int(train.sum()),
            "responded": int(y[train].sum()),
        },
        "test": {"campaigns": len(test_ids), "exposures": int(test.sum()), "responded": int(y[test].sum())},
        "train_exposures_with_labels_final_at_split": int(final_at_split.size),
        "readout_rows": readout_rows,
    }


def print_report(
    results: dict[str, Any],
    counts: dict[str, Any],
    table: pd.DataFrame,
    readout_name: str,
    seconds: float,
    evaluator_seconds: float,
) -> None:
    """The Markdown tables, the explanation, the A/B verdicts and two campaigns' readout rows."""
    print()
    print(markdown(results, counts))
    print()
    print(eval_uplift.markdown(results["uplift"]))
    print()
    print(results["explanation"])
    print()
    print(f"A/B readout ({len(table):,} rows -> {readout_name}); verdicts of the non-control rows:")
    for scope, v in results["ab_verdicts"].items():
        print(f"  {scope}: " + ", ".join(f"{k} {n}" for k, n in v.items()))
    prior = results["prior_covered_buyers_by_arm"]
    print(
        "  observational: exposures whose household bought a covered product in the 8 weeks before "
        + ", ".join(f"{variant} {share:.1%}" for variant, share in prior.items())
    )
    with pd.option_context("display.width", 160):
        for campaign in SHOWN_CAMPAIGNS:
            rows = table[table["campaign_id"] == campaign].drop(columns="campaign_id")
            print(f"\ncampaign {campaign}:")
            print(rows.round(3).to_string(index=False))
    print(f"\nruntime {seconds}s (evaluator {evaluator_seconds}s)")


def markdown(results: dict[str, Any], counts: dict[str, Any]) -> str:
    a, w, d = results["auc"], results["within_campaign_auc_test"], results["diagnostics"]
    test = counts["test"]
    lines = [
        f"| scorer | ROC AUC, test split ({test['campaigns']} campaigns, {test['exposures']:,} exposures, "
        f"{test['responded']:,} responded) | mean AUC within a test campaign |",
        "|---|---:|---:|",
        f"| online River, prequential over all {counts['exposures']:,} exposures (treatment "
        f"{a['online_prequential_treatment']:.3f}, control {a['online_prequential_control']:.3f}) "
        f"| {a['online_prequential_all']:.3f} | |",
    ]
    labels = {
        "online": "online River (scores stored at exposure)",
        "logistic_regression": "sklearn LR (standardised)",
        "random_forest": "sklearn RF",
        "logistic_regression_labels_final_at_split": "sklearn LR, labels final at the split only",
        "random_forest_labels_final_at_split": "sklearn RF, labels final at the split only",
        "variant_only": "variant only (treatment 1, control 0)",
    }
    for key, label in labels.items():
        lines.append(f"| {label} | {a[key + '_test']:.3f} | {w[key]:.3f} |")
    for key, label in (
        ("online_without_prior_purchases", "diagnostic: online without prior purchases (before)"),
        ("online_learning_rate_0.01", "diagnostic: online, learning rate 0.01"),
        (
            "online_without_descriptors_learning_rate_0.01",
            "diagnostic: online without descriptors nor prior purchases, rate 0.01 (first model)",
        ),
        (
            "logistic_regression_without_descriptors",
            "diagnostic: sklearn LR without descriptors nor prior purchases",
        ),
        ("online_without_churn_probability", "diagnostic: online without churn_probability"),
        ("logistic_regression_without_churn_probability", "diagnostic: sklearn LR without churn_probability"),
    ):
        lines.append(f"| {label} | {d[key]['test']:.3f} | {d[key]['within_campaign']:.3f} |")
    return "\n".join(lines)
