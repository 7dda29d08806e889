"""One instant's campaign events (step 7 of ``state.evaluator.evaluate``).

Campaign events that occurred before the instant (``state.campaigns.response``): response windows
that ended get their labels (test, then train); new exposures are scored from the customer's
features at the instant and the variant; responses mark their exposure; the counters feed the A/B
readout (``state.campaigns.abtest``). The uplift model (``state.campaigns.uplift``) scores and learns
the same exposures; the :class:`~state.campaigns.campaign_book.CampaignBook` keeps all of it.

Kept apart from the coordinator because it is the one step fed by the second input topic
(``campaign-events``) rather than by purchases, and from the predictions because it scores
exposures, not buyers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from state.campaigns.campaign_book import CampaignBook
from state.campaigns.descriptors import descriptor_features
from state.campaigns.prior_features import prior_features
from state.campaigns.response import response_features
from state.evaluator.predict import LifetimeModel
from state.evaluator.prediction_step import scored
from state.evaluator.rescore import EMPTY
from state.models.churn import ChurnModel
from state.segments.population import Population
from streams.campaign_contract import CONTROL, CampaignEvent

__all__ = ["campaign_step"]


def campaign_step(
    at_ms: int,
    events: Sequence[CampaignEvent],
    book: CampaignBook,
    population: Population,
    lifetime: LifetimeModel | None,
    churn: ChurnModel,
    segment_index: npt.NDArray[np.int64],
) -> None:
    """Label the exposures whose window ended, score the new ones, mark the responses (into ``book``).

    An exposure of a customer with no purchase yet is scored on empty columns; before the first
    lifetime fit, on their behaviour only (no P(alive), no churn probability).
    """
    pop = population
    book.resolve_due(at_ms)
    fresh: list[tuple[int, CampaignEvent]] = []
    for event in events:
        if event.type != "exposure":
            continue
        row = pop.index.get(event.customer_id, -1)
        profile = pop.profiles[row] if row >= 0 else None
        key = book.add_exposure(event, profile.rfm_segment if profile else "unknown")
        if key is not None:
            fresh.append((key, event))
    for event in events:
        if event.type == "response":
            book.add_response(event)
    if not fresh:
        return
    keys = np.array([k for k, _ in fresh], dtype=np.int64)
    rows = np.array([pop.index.get(e.customer_id, -1) for _, e in fresh], dtype=np.int64)
    known = rows >= 0
    n = len(fresh)
    cols = {name: np.zeros(n, dtype=np.int64) for name in pop.columns(EMPTY)}
    alive, expected, probability = np.zeros(n), np.zeros(n), np.zeros(n)
    segment = np.full(n, -1, dtype=np.int64)
    if known.any() and lifetime is not None:
        k_cols, k_alive, k_expected, k_segment, _, k_probability = scored(
            pop, lifetime, churn, segment_index, rows[known], at_ms
        )
        for name, column in k_cols.items():
            cols[name][known] = column
        alive[known], expected[known], segment[known] = k_alive, k_expected, k_segment
        probability[known] = k_probability
    elif known.any():  # before the first lifetime fit: behaviour only
        for name, column in pop.columns(rows[known]).items():
            cols[name][known] = column
        segment[known] = segment_index[cols["r"][known], cols["f"][known], cols["m"][known]]
    treated = np.array([e.variant != CONTROL for _, e in fresh], dtype=np.bool_)
    descriptors = [e.descriptor for _, e in fresh]
    x = response_features(
        cols,
        at_ms,
        alive,
        expected,
        probability,
        segment,
        len(churn.segments),
        treated,
        descriptor_features(descriptors),
        prior_features([e.prior for _, e in fresh]),
    )
    book.score(at_ms, keys, x, segment, descriptors)
