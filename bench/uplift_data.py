"""The validation slice both uplift selection rounds read (``bench/uplift_selection.py`` and
``bench/uplift_arms.py``): The Complete Journey's exposures with the live features at each
campaign's start, the held-out campaigns of ``bench/eval_response.py`` set aside, and the last
``VALIDATION`` training campaigns as the validation campaigns, with the evaluation propensity's
weights inside them. Nothing here reads a held-out label."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.response_data import (
    campaign_descriptor_map,
    campaign_table,
    exposure_table,
    features_at_starts,
    prior_purchase_rows,
    split_campaigns,
)
from bench.uplift_checks import CLIP as EVALUATION_CLIP
from bench.uplift_checks import campaign_weights, evaluation_propensity
from segstream.campaigns import load_completejourney_campaigns
from segstream.sources import load_completejourney
from state.campaigns.prior_features import prior_features
from state.campaigns.response import response_feature_names

VALIDATION = 6  # training campaigns kept back for choosing (the last by start date)
SEED = 7


@dataclass(frozen=True)
class ValidationData:
    """Every exposure's features (``x``, columns ``names``) and, for the validation ones (``val``),
    labels ``y``, variant ``t``, campaign ``camp`` and the evaluation propensity's weights ``w``."""

    events: pd.DataFrame
    exposures: pd.DataFrame
    test_ids: list[str]
    validation_ids: list[str]
    feats: dict[str, Any]
    names: tuple[str, ...]
    x: np.ndarray
    segment: np.ndarray
    val: np.ndarray
    y: np.ndarray
    t: np.ndarray
    camp: np.ndarray
    w: np.ndarray


def validation_data() -> ValidationData:
    """Load and split (about a minute: the features replay the households' history)."""
    events = load_completejourney_campaigns()
    campaigns = campaign_table()
    exposures = exposure_table(events, campaigns)
    test_ids, _ = split_campaigns(campaigns)
    training = campaigns[~campaigns["campaign_id"].isin(test_ids)]
    validation_ids = training["campaign_id"].tolist()[-VALIDATION:]
    prior = prior_features(prior_purchase_rows(events, exposures))
    feats = features_at_starts(load_completejourney(), exposures, campaign_descriptor_map(events), prior)
    names = tuple(response_feature_names(feats["segments"]))
    x = feats["x"]
    val = exposures["campaign_id"].isin(validation_ids).to_numpy()
    y = exposures["responded"].to_numpy()[val]
    t = (exposures["variant"] != "control").to_numpy()[val]
    camp = exposures["campaign_id"].to_numpy()[val]
    blind = np.delete(x, names.index("treated"), axis=1)[val]
    w = campaign_weights(evaluation_propensity(blind, t, camp, SEED), t, camp, EVALUATION_CLIP)
    print(f"validation campaigns {', '.join(validation_ids)}; held-out never scored: {', '.join(test_ids)}")
    return ValidationData(
        events,
        exposures,
        list(test_ids),
        validation_ids,
        feats,
        names,
        x,
        feats["segment"],
        val,
        y,
        t,
        camp,
        w,
    )
