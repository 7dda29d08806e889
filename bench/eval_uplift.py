"""Uplift part of ``bench/eval_response.py`` (``make eval``): online two-model uplift with
inverse-propensity weights, against a batch two-model logistic regression, by Qini.

Every exposure gets its estimated uplift from :class:`state.campaigns.uplift.UpliftModel` as it stood at
the exposure (scored at the campaign start, arms labelled at the campaign's end, propensity
learned at once). On the held-out campaigns:

- **Qini coefficient** (``state.campaigns.qini``), pooled over the held-out exposures and **within a
  campaign** (exposure-weighted mean over the held-out campaigns of the coefficient inside each:
  a target list is chosen per campaign, and pooling campaigns whose treated shares run from 3% to
  51% mixes the campaigns' differences into the ranking); a 95% percentile interval from 200
  seeded bootstrap resamples of the exposures (within each campaign for the within figure);
- observed uplift (treated rate minus control rate) in the top 10/20/30% of the ranking against
  random targeting (everyone), pooled;
- per named segment at the campaign start: observed uplift, mean estimated uplift, Qini inside
  the segment;
- the same Qini figures **weighted** by an evaluation propensity fitted inside each held-out
  campaign (``bench/uplift_checks.py``): the plain Qini of observational arms also reads the
  selection into a ranking, the weighted one removes the part the features see;
- **balance**: the standardised mean difference of ``bought_covered_before`` between the arms
  inside each held-out campaign, unweighted and weighted by the online propensity without the
  prior purchases (before), with them (now) and by the evaluation propensity; the propensity
  models' AUC for the variant.

Every figure is given for the online model (prior purchases among its features) and for the same
model without them (``before``: the prior-purchase columns zeroed, as the model was before they
existed). The arms are observational (targeting was not random), so every figure here compares
with an observed treated-minus-control difference that still holds whatever selection the
features do not see; a Qini says the ranking agrees with that difference, not that it is causal.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.uplift_checks import CLIP as EVALUATION_CLIP
from bench.uplift_checks import (
    balance,
    campaign_weights,
    evaluation_propensity,
    mean_auc_within,
    within,
    within_interval,
)
from state.campaigns.prior_features import PRIOR_FEATURES
from state.campaigns.qini import bootstrap_qini, qini_coefficient, uplift_at
from state.campaigns.response import RESPONSE_LEARNING_RATE
from state.campaigns.uplift import PROPENSITY_CLIP, UpliftModel

RESAMPLES = 200
SEED = 7
FRACTIONS = (0.1, 0.2, 0.3)


def online_uplift(
    exposures: pd.DataFrame,
    x: np.ndarray,
    segment: np.ndarray,
    names: tuple[str, ...],
    segments: tuple[str, ...],
    *,
    clip: float = PROPENSITY_CLIP,
    learning_rate: float = RESPONSE_LEARNING_RATE,
    stop_at: Collection[str] = (),
) -> tuple[np.ndarray, np.ndarray, UpliftModel]:
    """Stored uplift and propensity of every exposure (at its start) and the model after the last
    label; with ``stop_at``, no exposure from the first of those campaigns on is scored (NaN) or learned."""
    y = exposures["responded"].to_numpy()
    model = UpliftModel(names=names, segments=segments, clip=clip, learning_rate=learning_rate)
    uplift, propensity = np.full(len(exposures), np.nan), np.full(len(exposures), np.nan)
    for (start, campaign), group in exposures.groupby(["start_ms", "campaign_id"], sort=False):
        if campaign in stop_at:
            break
        for due in model.take_due(int(start)):
            model.resolve(due, y[due.keys])
        idx = group.index.to_numpy()
        window = int(group["end_ms"].iloc[0]) - int(start)
        uplift[idx], propensity[idx] = model.score(int(start), idx, x[idx], segment[idx], window_ms=window)
    for due in model.take_due(2**62):  # only exposures scored above are pending
        model.resolve(due, y[due.keys])
    return uplift, propensity, model


def without_prior(x: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """``x`` with the prior-purchase columns zeroed: the features the models had before them."""
    bare = x.copy()
    bare[:, [names.index(n) for n in PRIOR_FEATURES]] = 0.0
    return bare


def batch_uplift(
    x: np.ndarray, y: np.ndarray, treated: np.ndarray, train: np.ndarray, test: np.ndarray
) -> np.ndarray:
    """Two sklearn logistic regressions (one per arm) on the training exposures; uplift on the test ones."""
    arms = []
    for arm in (treated, ~treated):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        arms.append(model.fit(x[train & arm], y[train & arm]).predict_proba(x[test])[:, 1])
    return np.asarray(arms[0] - arms[1])


def qini_summary(
    campaign: np.ndarray, u: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray | None = None
) -> dict[str, Any]:
    """Qini (pooled and within a campaign, with bootstrap intervals) and uplift at the top fractions,
    weighted by ``w`` if given."""
    pooled = bootstrap_qini(u, t, y, resamples=RESAMPLES, seed=SEED, weights=w)
    inside = within_interval(campaign, u, t, y, w, RESAMPLES, SEED)
    return {
        "qini_pooled": round(qini_coefficient(u, t, y, w), 5),
        "qini_pooled_interval": [round(v, 5) for v in pooled],
        "qini_within_campaign": round(within(campaign, u, t, y, w), 5),
        "qini_within_campaign_interval": [round(v, 5) for v in inside],
        "uplift_at_top": {f"{f:.0%}": round(uplift_at(u, t, y, f, w), 4) for f in FRACTIONS},
        "uplift_random_targeting": round(uplift_at(u, t, y, 1.0, w), 4),
    }


def by_segment(
    names: np.ndarray, u: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Per segment at the start: exposures, observed and mean estimated uplift, Qini inside it
    (plain and weighted by ``w``)."""
    rows = {}
    for name in sorted(set(names.tolist())):
        mine = names == name
        if not (t[mine].any() and (~t[mine]).any()):
            continue
        rows[str(name)] = {
            "exposures": int(mine.sum()),
            "treated": int(t[mine].sum()),
            "observed_uplift": round(uplift_at(u[mine], t[mine], y[mine], 1.0), 4),
            "mean_estimated_uplift": round(float(u[mine].mean()), 4),
            "qini": round(qini_coefficient(u[mine], t[mine], y[mine]), 5),
            "qini_weighted": round(qini_coefficient(u[mine], t[mine], y[mine], w[mine]), 5),
        }
    return rows


def evaluate(
    exposures: pd.DataFrame,
    x: np.ndarray,
    segment: np.ndarray,
    segment_name: np.ndarray,
    names: tuple[str, ...],
    segments: tuple[str, ...],
    test: np.ndarray,
) -> dict[str, Any]:
    """The uplift results for ``bench/eval_response.json`` (module docstring)."""
    y = exposures["responded"].to_numpy()
    treated = (exposures["variant"] != "control").to_numpy()
    campaign = exposures["campaign_id"].to_numpy()
    uplift, propensity, model = online_uplift(exposures, x, segment, names, segments)
    before, before_propensity, before_model = online_uplift(
        exposures, without_prior(x, names), segment, names, segments
    )
    batch = batch_uplift(x, y, treated, ~test, test)
    t, yt, ct = treated[test], y[test], campaign[test]
    blind = np.delete(x, names.index("treated"), axis=1)[test]
    e_eval = evaluation_propensity(blind, t, ct, SEED)
    w = campaign_weights(e_eval, t, ct, EVALUATION_CLIP)
    report, report_before = model.report(), before_model.report()

    def both(u: np.ndarray) -> dict[str, Any]:
        return {"plain": qini_summary(ct, u, t, yt), "weighted": qini_summary(ct, u, t, yt, w)}

    bought = x[test, names.index("bought_covered_before")]
    return {
        "online": both(uplift[test]),
        "online_before_prior_purchases": both(before[test]),
        "batch_two_model_logistic_regression": both(batch),
        "online_by_segment": by_segment(segment_name[test], uplift[test], t, yt, w),
        "balance_bought_covered_before": balance(
            ct,
            bought,
            t,
            {
                "unweighted": None,
                "online_propensity_before": campaign_weights(before_propensity[test], t, ct, model.clip),
                "online_propensity": campaign_weights(propensity[test], t, ct, model.clip),
                "evaluation_propensity": w,
            },
        ),
        "propensity_auc": {
            "prequential_all": {
                "online": round(float(report["propensity"]["auc"]), 4),
                "online_before": round(float(report_before["propensity"]["auc"]), 4),
            },
            "mean_within_test_campaign": {
                "online": mean_auc_within(ct, t, propensity[test]),
                "online_before": mean_auc_within(ct, t, before_propensity[test]),
                "evaluation_cross_fitted": mean_auc_within(ct, t, e_eval),
            },
        },
        "online_model": {
            "version": report["version"],
            "propensity_clip": report["clip"],
            "prequential_auc": {
                "treatment_arm": report["treatment"]["auc"],
                "control_arm": report["control"]["auc"],
                "propensity": report["propensity"]["auc"],
            },
            "propensity_at_exposure_by_arm": {
                "treatment": round(float(propensity[treated].mean()), 4),
                "control": round(float(propensity[~treated].mean()), 4),
            },
        },
        "evaluation_propensity": "cross-fitted logistic regression inside each held-out campaign "
        "(bench/uplift_checks.py), clipped to [0.01, 0.99]; weights normalised within each campaign's arm",
        "resamples": RESAMPLES,
        "seed": SEED,
    }


def markdown(u: dict[str, Any]) -> str:
    lines = [
        "| uplift ranking, held-out campaigns | Qini within a campaign [95% CI] | weighted Qini within "
        "[95% CI] | Qini pooled [95% CI] | uplift top 10% / 20% / 30% | random targeting |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("online", "online two-model, IPW, prior purchases"),
        ("online_before_prior_purchases", "before: the same without prior purchases"),
        ("batch_two_model_logistic_regression", "sklearn LR two-model, prior purchases"),
    ):
        r, q = u[key]["plain"], u[key]["weighted"]
        w, v, p = (
            r["qini_within_campaign_interval"],
            q["qini_within_campaign_interval"],
            r["qini_pooled_interval"],
        )
        tops = " / ".join(f"{x:.3f}" for x in r["uplift_at_top"].values())
        lines.append(
            f"| {label} | {r['qini_within_campaign']:.4f} [{w[0]:.4f}, {w[1]:.4f}] | "
            f"{q['qini_within_campaign']:.4f} [{v[0]:.4f}, {v[1]:.4f}] | {r['qini_pooled']:.4f} "
            f"[{p[0]:.4f}, {p[1]:.4f}] | {tops} | {r['uplift_random_targeting']:.3f} |"
        )
    b, a = u["balance_bought_covered_before"]["mean_within_campaign"], u["propensity_auc"]
    lines += [
        "",
        "SMD of bought_covered_before inside a held-out campaign (mean): "
        + ", ".join(f"{k} {v:+.3f}" for k, v in b.items()),
        "propensity AUC for the variant, prequential: "
        + ", ".join(f"{k} {v:.3f}" for k, v in a["prequential_all"].items())
        + "; mean within a held-out campaign: "
        + ", ".join(f"{k} {v:.3f}" for k, v in a["mean_within_test_campaign"].items()),
    ]
    return "\n".join(lines)
