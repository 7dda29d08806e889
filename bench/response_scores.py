"""Models of ``bench/eval_response.py`` (``make eval``, campaign response): online and batch scores.

The online response model fed in time order (``online``: scores stored at exposure), the batch
baselines (sklearn logistic regression and random forest), the AUCs on the test split (pooled
and within a campaign), the per-campaign calibration, and the diagnostics (the online model and
the logistic regression with feature groups removed). Kept apart from the data and the report:
these functions take the feature matrix and labels and return scores and figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.response_data import SEED
from state.campaigns.descriptors import DESCRIPTOR_FEATURES
from state.campaigns.prior_features import PRIOR_FEATURES
from state.campaigns.response import ResponseModel, response_feature_names


def online(
    exposures: pd.DataFrame,
    x: np.ndarray,
    segment: np.ndarray,
    segments: tuple[str, ...],
    learning_rate: float | None = None,
) -> tuple[np.ndarray, ResponseModel]:
    """Stored online scores of every exposure (scored at its start) and the model after the last label."""
    y = exposures["responded"].to_numpy()
    tuned = {} if learning_rate is None else {"learning_rate": learning_rate}
    model = ResponseModel(names=response_feature_names(segments), segments=segments, **tuned)
    scores = np.full(len(exposures), np.nan)
    for (start, _campaign), group in exposures.groupby(["start_ms", "campaign_id"], sort=False):
        for due in model.take_due(int(start)):
            model.resolve(due, y[due.batch.rows])
        idx = group.index.to_numpy()
        window = int(group["end_ms"].iloc[0]) - int(start)
        scores[idx] = model.score(int(start), idx, x[idx], segment[idx], window_ms=window)
    for due in model.take_due(2**62):
        model.resolve(due, y[due.batch.rows])
    return scores, model


def within_campaign_auc(exposures: pd.DataFrame, mask: np.ndarray, scores: np.ndarray) -> float:
    """Mean over the masked campaigns (with both labels) of the AUC inside each campaign."""
    values = []
    for _, group in exposures[mask].groupby("campaign_id"):
        y = group["responded"].to_numpy()
        if 0 < y.sum() < y.size:
            values.append(roc_auc_score(y, scores[group.index.to_numpy()]))
    return float(np.mean(values))


def batch_scores(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> dict[str, np.ndarray]:
    return {"logistic_regression": logistic(x, y, train, test), "random_forest": forest(x, y, train, test)}


def logistic(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return np.asarray(model.fit(x[train], y[train]).predict_proba(x[test])[:, 1])


def forest(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    model = RandomForestClassifier(n_estimators=300, min_samples_leaf=5, random_state=SEED, n_jobs=-1)
    return np.asarray(model.fit(x[train], y[train]).predict_proba(x[test])[:, 1])


def split_aucs(exposures: pd.DataFrame, test: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Pooled AUC over the test exposures and the mean AUC within a test campaign."""
    full = np.full(len(exposures), np.nan)
    full[test] = scores
    y = exposures["responded"].to_numpy()[test]
    return {
        "test": round(float(roc_auc_score(y, scores)), 4),
        "within_campaign": round(within_campaign_auc(exposures, test, full), 4),
    }


def calibration(exposures: pd.DataFrame, stored: np.ndarray) -> dict[str, Any]:
    """Per campaign: response rate, mean online score, and the rate of the campaign whose labels the
    model learned last before this one started (latest window end before the start)."""
    c = (
        exposures.assign(score=stored)
        .groupby("campaign_id", sort=False)
        .agg(
            start_ms=("start_ms", "first"),
            end_ms=("end_ms", "first"),
            rate=("responded", "mean"),
            score=("score", "mean"),
        )
    )
    last = []
    for start in c["start_ms"].tolist():
        done = c[c["end_ms"] <= start]
        latest = done[done["end_ms"] == done["end_ms"].max()]  # same window end: learned in feeding order
        last.append(float(latest["rate"].iloc[-1]) if len(done) else None)
    c["last_learned_rate"] = last
    learned = c.dropna(subset=["last_learned_rate"])
    return {
        "corr_mean_score_own_rate": round(float(np.corrcoef(learned["score"], learned["rate"])[0, 1]), 3),
        "corr_mean_score_last_learned_rate": round(
            float(np.corrcoef(learned["score"], learned["last_learned_rate"])[0, 1]), 3
        ),
        "campaigns": [
            {
                "campaign_id": cid,
                "start": pd.Timestamp(r.start_ms, unit="ms", tz="UTC").strftime("%Y-%m-%d"),
                "exposures": int((exposures["campaign_id"] == cid).sum()),
                "rate": round(float(r.rate), 4),
                "mean_online_score": round(float(r.score), 4),
                "last_learned_rate": None
                if r.last_learned_rate is None
                else round(float(r.last_learned_rate), 4),
            }
            for cid, r in c.iterrows()
        ],
    }


def diagnostic_scores(
    exposures: pd.DataFrame,
    x: np.ndarray,
    y: np.ndarray,
    segment: np.ndarray,
    segments: tuple[str, ...],
    train: np.ndarray,
    test: np.ndarray,
    calib: dict[str, Any],
) -> dict[str, Any]:
    """The online model and the logistic regression without some features, and the online model at
    another learning rate, beside ``calib``. Chosen after seeing the main figures: they explain,
    they are not the result."""
    names = response_feature_names(segments)
    no_churn = x.copy()
    no_churn[:, names.index("churn_probability")] = 0.0
    fast, _ = online(exposures, x, segment, segments, learning_rate=0.01)
    bare = x.copy()  # the first model: neither descriptors nor prior purchases
    bare[:, [names.index(n) for n in (*DESCRIPTOR_FEATURES, *PRIOR_FEATURES)]] = 0.0
    bare_scores, bare_model = online(exposures, bare, segment, segments, learning_rate=0.01)
    no_prior = x.copy()
    no_prior[:, [names.index(n) for n in PRIOR_FEATURES]] = 0.0
    before_scores, before_model = online(exposures, no_prior, segment, segments)
    return {
        "online_without_prior_purchases": {
            **split_aucs(exposures, test, before_scores[test]),
            "prequential_all": round(float(before_model.report()["auc"]), 4),
        },
        "online_learning_rate_0.01": split_aucs(exposures, test, fast[test]),
        "online_without_descriptors_learning_rate_0.01": {
            **split_aucs(exposures, test, bare_scores[test]),
            "prequential_all": round(float(bare_model.report()["auc"]), 4),
        },
        "logistic_regression_without_descriptors": split_aucs(
            exposures, test, logistic(bare, y, train, test)
        ),
        "online_without_churn_probability": split_aucs(
            exposures, test, online(exposures, no_churn, segment, segments)[0][test]
        ),
        "logistic_regression_without_churn_probability": split_aucs(
            exposures, test, logistic(no_churn, y, train, test)
        ),
        "calibration": calib,
    }
