"""Uplift part of ``bench/eval_response.py`` (``make eval``): online two-model uplift with
inverse-propensity weights, against a batch two-model logistic regression, by Qini.

Every exposure gets its estimated uplift from :class:`state.uplift.UpliftModel` as it stood at
the exposure (scored at the campaign start, arms labelled at the campaign's end, propensity
learned at once). On the held-out campaigns:

- **Qini coefficient** (``state.qini``), pooled over the held-out exposures and **within a
  campaign** (exposure-weighted mean over the held-out campaigns of the coefficient inside each:
  a target list is chosen per campaign, and pooling campaigns whose treated shares run from 3% to
  51% mixes the campaigns' differences into the ranking); a 95% percentile interval from 200
  seeded bootstrap resamples of the exposures (within each campaign for the within figure);
- observed uplift (treated rate minus control rate) in the top 10/20/30% of the ranking against
  random targeting (everyone), pooled;
- per named segment at the campaign start: observed uplift, mean estimated uplift, Qini inside
  the segment.

The arms are observational (targeting was not random), so every figure here compares with an
observed treated-minus-control difference that still holds the selection the features do not
see; the Qini says the ranking agrees with that difference, not that it is causal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from state.qini import bootstrap_qini, qini_coefficient, uplift_at
from state.uplift import UpliftModel

RESAMPLES = 200
SEED = 7
FRACTIONS = (0.1, 0.2, 0.3)


def online_uplift(
    exposures: pd.DataFrame,
    x: np.ndarray,
    segment: np.ndarray,
    names: tuple[str, ...],
    segments: tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray, UpliftModel]:
    """Stored uplift and propensity of every exposure (at its start) and the model after the last label."""
    y = exposures["responded"].to_numpy()
    model = UpliftModel(names=names, segments=segments)
    uplift, propensity = np.full(len(exposures), np.nan), np.full(len(exposures), np.nan)
    for (start, _campaign), group in exposures.groupby(["start_ms", "campaign_id"], sort=False):
        for due in model.take_due(int(start)):
            model.resolve(due, y[due.keys])
        idx = group.index.to_numpy()
        window = int(group["end_ms"].iloc[0]) - int(start)
        uplift[idx], propensity[idx] = model.score(int(start), idx, x[idx], segment[idx], window_ms=window)
    for due in model.take_due(2**62):
        model.resolve(due, y[due.keys])
    return uplift, propensity, model


def batch_uplift(
    x: np.ndarray, y: np.ndarray, treated: np.ndarray, train: np.ndarray, test: np.ndarray
) -> np.ndarray:
    """Two sklearn logistic regressions (one per arm) on the training exposures; uplift on the test ones."""
    arms = []
    for arm in (treated, ~treated):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        arms.append(model.fit(x[train & arm], y[train & arm]).predict_proba(x[test])[:, 1])
    return np.asarray(arms[0] - arms[1])


def _within(campaign: np.ndarray, u: np.ndarray, t: np.ndarray, y: np.ndarray) -> float:
    values, weights = [], []
    for c in np.unique(campaign):
        mine = campaign == c
        values.append(qini_coefficient(u[mine], t[mine], y[mine]))
        weights.append(int(mine.sum()))
    return float(np.average(values, weights=weights))


def _within_interval(
    campaign: np.ndarray, u: np.ndarray, t: np.ndarray, y: np.ndarray
) -> tuple[float, float]:
    rng = np.random.default_rng(SEED)
    groups = [np.flatnonzero(campaign == c) for c in np.unique(campaign)]
    values = []
    for _ in range(RESAMPLES):
        i = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups])
        values.append(_within(campaign[i], u[i], t[i], y[i]))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def qini_summary(campaign: np.ndarray, u: np.ndarray, t: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Qini (pooled and within a campaign, with bootstrap intervals) and uplift at the top fractions."""
    pooled = bootstrap_qini(u, t, y, resamples=RESAMPLES, seed=SEED)
    within = _within_interval(campaign, u, t, y)
    return {
        "qini_pooled": round(qini_coefficient(u, t, y), 5),
        "qini_pooled_interval": [round(v, 5) for v in pooled],
        "qini_within_campaign": round(_within(campaign, u, t, y), 5),
        "qini_within_campaign_interval": [round(v, 5) for v in within],
        "uplift_at_top": {f"{f:.0%}": round(uplift_at(u, t, y, f), 4) for f in FRACTIONS},
        "uplift_random_targeting": round(uplift_at(u, t, y, 1.0), 4),
    }


def by_segment(names: np.ndarray, u: np.ndarray, t: np.ndarray, y: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per segment at the start: exposures, observed and mean estimated uplift, Qini inside it."""
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
    batch = batch_uplift(x, y, treated, ~test, test)
    report = model.report()
    t, yt, ct = treated[test], y[test], campaign[test]
    return {
        "online": qini_summary(ct, uplift[test], t, yt),
        "batch_two_model_logistic_regression": qini_summary(ct, batch, t, yt),
        "online_by_segment": by_segment(segment_name[test], uplift[test], t, yt),
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
        "resamples": RESAMPLES,
        "seed": SEED,
    }


def markdown(u: dict[str, Any]) -> str:
    lines = [
        "| uplift ranking, held-out campaigns | Qini within a campaign [95% CI] | Qini pooled [95% CI] | "
        "uplift top 10% / 20% / 30% | random targeting |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("online", "online two-model, IPW"),
        ("batch_two_model_logistic_regression", "sklearn LR two-model"),
    ):
        r = u[key]
        w, p = r["qini_within_campaign_interval"], r["qini_pooled_interval"]
        tops = " / ".join(f"{v:.3f}" for v in r["uplift_at_top"].values())
        lines.append(
            f"| {label} | {r['qini_within_campaign']:.4f} [{w[0]:.4f}, {w[1]:.4f}] | {r['qini_pooled']:.4f} "
            f"[{p[0]:.4f}, {p[1]:.4f}] | {tops} | {r['uplift_random_targeting']:.3f} |"
        )
    return "\n".join(lines)
