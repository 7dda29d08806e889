"""``segstream models`` and ``segstream campaigns``: the evaluator's live models, as text.

Both print what the segment evaluator saved in its summary (versions, prequential AUCs, the
A/B readout, uplift); nothing is computed here beyond formatting. Apart from ``segstream.cli``
because the readouts are long and change with the models, not with the argument handling.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from agents.settings import Settings
from segstream.model_lines import alert_gate_lines, churn_calibration_lines
from state.evaluator.read_model import ResponseReport, Summary, UpliftReport, load_summary

__all__ = ["print_campaigns", "print_models"]


async def _saved_summary(settings: Settings) -> Summary | None:
    """The summary the segment evaluator last saved (None before its first save)."""
    from state.adapters.redis_profiles import RedisProfileStore

    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        return await load_summary(profiles)
    finally:
        await profiles.close()


async def print_models(settings: Settings) -> int:
    """``segstream models``: versions, the churn model by segment, lifetime, response, cluster quality."""
    import pandas as pd

    from state.evaluator.predict import LifetimeModel
    from streams.outputs import rfc3339

    summary = await _saved_summary(settings)
    if summary is None:
        print("no models yet: the segment evaluator has not had a clock tick")
    else:
        churn = summary.churn
        auc = f"{churn.auc:.3f}" if churn.auc is not None else "n/a (needs churned and retained examples)"
        print(f"as of {rfc3339(summary.as_of_ms)} (the segment evaluator's clock)")
        print(f"cut-points: version {summary.cutpoint_version}")
        print(f"clusters: model version {summary.model_version}, {len(summary.clusters)} clusters")
        print(
            f"churn (River logistic regression, horizon {churn.horizon_days:g} days, version {churn.version}): "
            f"prequential ROC AUC {auc} over {churn.examples:,} labelled predictions, "
            f"{churn.positives:,} churned"
        )
        if churn.by_segment:
            table = pd.DataFrame(msgspec.to_builtins(churn.by_segment)).T[["auc", "examples", "positives"]]
            table.index.name = "segment at prediction"
            print(table.to_string(float_format=lambda v: f"{v:.3f}"))
        for line in churn_calibration_lines(churn):  # none if saved by a version without it
            print(line)
        for line in alert_gate_lines(summary.alert_gates):
            print(line)
        lifetime = summary.lifetime
        if lifetime is None:
            print(
                "lifetime model: not fitted yet (needs 100 buyers, 10 repeat buyers, four weeks of history)"
            )
        else:
            model = LifetimeModel.from_params(lifetime)
            print(f"lifetime model: {model.describe()}, fitted at {rfc3339(model.fitted_at_ms)} (weeks)")
        print(_response_line(summary.response))
        from segstream.quality_lines import cluster_quality_lines

        print("\n".join(cluster_quality_lines(summary.cluster_quality)))
    return 0


def _auc(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "n/a"


def _response_line(response: ResponseReport) -> str:
    arms = ", ".join(f"{arm} {_auc(row.auc)}" for arm, row in response.by_variant.items())
    return (
        f"response (River logistic regression, window {response.window_days:g} days, version "
        f"{response.version}): prequential ROC AUC {_auc(response.auc)} over {response.examples:,} labelled "
        f"exposures ({response.positives:,} responded{'; by arm: ' + arms if arms else ''}); "
        f"{response.exposures:,} exposures seen"
    )


def _offline_line() -> str | None:
    """The held-out split figures of ``make eval`` beside the live ones, when the bench file is there."""
    found = Path(__file__).resolve().parents[1] / "bench" / "eval_response.json"
    if not found.exists():
        return None
    auc = json.loads(found.read_text())["results"]["auc"]
    return (
        f"make eval (bench/eval_response.json): prequential {auc['online_prequential_all']:.3f} over all exposures, "
        f"held-out campaigns {auc['online_test']:.3f} (best batch "
        f"{max(auc['logistic_regression_test'], auc['random_forest_test']):.3f})"
    )


def _uplift_lines(uplift: UpliftReport | None) -> list[str]:
    if uplift is None or not uplift.version or uplift.population is None:
        return ["uplift: not learned yet (needs an ended window in both arms)"]
    pop = uplift.population
    lines = [
        f"uplift (treatment arm minus control arm, inverse-propensity weighted, version {uplift.version}): "
        f"prequential AUC treatment arm {_auc(uplift.treatment.auc)}, control arm "
        f"{_auc(uplift.control.auc)}, propensity {_auc(uplift.propensity.auc)}; "
        f"suggested target list {pop.suggested_target:,} of {pop.customers:,} buyers "
        f"({pop.suggested_share:.0%}, estimated uplift above 0), about {pop.estimated_incremental:.1f} "
        "incremental responses (observational: see state/campaigns/uplift.py)"
    ]
    for row in pop.by_segment:
        lines.append(
            f"  {row.segment}: mean uplift {row.mean_uplift:+.3f}, target {row.suggested_target:,} "
            f"of {row.customers:,}"
        )
    return lines


async def print_campaigns(settings: Settings) -> int:
    """``segstream campaigns``: the response model, ``make eval``'s figures, uplift, the A/B readout."""
    import pandas as pd

    from streams.outputs import rfc3339

    summary = await _saved_summary(settings)
    if summary is None or not summary.campaigns:
        print("no campaign exposures evaluated yet")
        return 0
    print(f"as of {rfc3339(summary.as_of_ms)} (the segment evaluator's clock)")
    print(_response_line(summary.response))
    offline = _offline_line()
    if offline:
        print(offline)
    print("\n".join(_uplift_lines(summary.uplift)))
    table = pd.DataFrame(summary.campaigns)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0
