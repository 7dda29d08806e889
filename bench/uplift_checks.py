"""Checks of the uplift evaluation that the non-random arms call for (``bench/eval_uplift.py``).

- **Evaluation propensity**: inside each campaign, a logistic regression of the variant on the
  features at exposure (``treated`` left out), cross-fitted (5 folds: each exposure is scored
  by a fit that did not see it), clipped to ``[CLIP, 1 - CLIP]`` (0.01, chosen on the validation
  campaigns of ``bench/uplift_selection.py`` by balance: 0.05 and 0.02 left ``bought_covered_before``
  less balanced, 0.005 balanced it no better with weights up to twice as large). It sees each campaign's own
  targeting, which the online propensity model, one model across campaigns learned as they
  come, cannot; it uses the campaign's variants, known at the exposure, and never a response.
- **Weighted Qini**: the Qini with inverse-propensity weights normalised within each campaign's
  arm (``state.campaigns.qini``, ``state.campaigns.balance``): the treated and control customers compared as if
  assignment had been random given the features. The bootstrap resamples exposures with their
  weights (the propensity is not refitted per resample, so the interval is a little narrow).
- **Balance**: the standardised mean difference (``state.campaigns.balance``) of ``bought_covered_before``
  between the arms inside each campaign, before weighting and after weighting by a propensity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from state.campaigns.balance import inverse_propensity_weights, standardized_mean_difference
from state.campaigns.qini import qini_coefficient

CLIP = 0.01
FOLDS = 5


def evaluation_propensity(
    x: np.ndarray, treated: np.ndarray, campaign: np.ndarray, seed: int, clip: float = CLIP
) -> np.ndarray:
    """Cross-fitted P(treated | x) inside each campaign (module docstring), clipped to ``[clip,
    1 - clip]``; a campaign with one arm only gets its treated share."""
    e = np.zeros(treated.size)
    for c in np.unique(campaign):
        mine = campaign == c
        t = treated[mine]
        folds = min(FOLDS, int(t.sum()), int((~t).sum()))
        if folds < 2:
            e[mine] = t.mean()
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        split = StratifiedKFold(folds, shuffle=True, random_state=seed)
        e[mine] = cross_val_predict(model, x[mine], t, cv=split, method="predict_proba")[:, 1]
    return np.clip(e, clip, 1 - clip)


def campaign_weights(
    propensity: np.ndarray, treated: np.ndarray, campaign: np.ndarray, clip: float
) -> np.ndarray:
    """Inverse-propensity weights normalised within each campaign's arm, ``propensity`` clipped to
    ``[clip, 1 - clip]`` (the online model's clip for its own weights)."""
    groups = np.unique(campaign, return_inverse=True)[1].astype(np.int64)
    return inverse_propensity_weights(propensity, treated, groups, clip=clip)


def within(
    campaign: np.ndarray, u: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray | None = None
) -> float:
    """Exposure-weighted mean over the campaigns of the (weighted) Qini coefficient inside each."""
    w = np.ones(u.size) if w is None else w
    values, sizes = [], []
    for c in np.unique(campaign):
        mine = campaign == c
        values.append(qini_coefficient(u[mine], t[mine], y[mine], w[mine]))
        sizes.append(int(mine.sum()))
    return float(np.average(values, weights=sizes))


def within_interval(
    campaign: np.ndarray,
    u: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    w: np.ndarray | None,
    resamples: int,
    seed: int,
) -> tuple[float, float]:
    """95% percentile interval of :func:`within` over bootstrap resamples drawn inside each campaign."""
    rng = np.random.default_rng(seed)
    w = np.ones(u.size) if w is None else w
    groups = [np.flatnonzero(campaign == c) for c in np.unique(campaign)]
    values = []
    for _ in range(resamples):
        i = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups])
        values.append(within(campaign[i], u[i], t[i], y[i], w[i]))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def balance(
    campaign: np.ndarray, feature: np.ndarray, t: np.ndarray, weights: dict[str, np.ndarray | None]
) -> dict[str, Any]:
    """SMD of ``feature`` inside each campaign under each weighting, and the exposure-weighted mean."""
    rows: dict[str, dict[str, float]] = {}
    means: dict[str, float] = {}
    for name, w in weights.items():
        values, sizes = [], []
        for c in np.unique(campaign):
            mine = campaign == c
            smd = standardized_mean_difference(feature[mine], t[mine], None if w is None else w[mine])
            rows.setdefault(str(c), {})[name] = round(smd, 3)
            if np.isfinite(smd):
                values.append(smd)
                sizes.append(int(mine.sum()))
        means[name] = round(float(np.average(values, weights=sizes)), 3)
    return {"mean_within_campaign": means, "by_campaign": rows}


def mean_auc_within(campaign: np.ndarray, t: np.ndarray, score: np.ndarray) -> float:
    """Mean over the campaigns with both arms of the ROC AUC of ``score`` for the variant."""
    values = [
        roc_auc_score(t[campaign == c], score[campaign == c])
        for c in np.unique(campaign)
        if 0 < t[campaign == c].sum() < (campaign == c).sum()
    ]
    return round(float(np.mean(values)), 4)
