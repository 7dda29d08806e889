"""The customer's earlier purchases of a campaign's covered products, as model features.

An exposure may carry a :class:`~streams.campaign_contract.PriorPurchases` (optional fields on
the ``campaign-events`` wire: what the customer bought of the products the campaign's coupons
cover, strictly before the exposure). The response, propensity and uplift models get it as the
columns :data:`PRIOR_FEATURES`, appended after the campaign descriptors:

- ``prior_known``: 1 if the exposure carried any prior-purchase field;
- ``bought_covered_before``: 1 if the customer bought at least one covered product in that
  span (``prior_covered_products`` above 0, or failing that ``prior_covered_spend`` above 0).

Why: whoever picked The Complete Journey's targets plainly used it (78.8% of the treated
exposures had bought a covered product in the 8 weeks before the campaign, 30.7% of the control
ones), and without it no feature could see that selection, so propensity weighting could not
correct it. Why only the indicator: on the training campaigns, the number of products, the
spend and the covered share of the customer's spend, added to it, neither raised the propensity's
AUC nor balanced the arms better, nor improved the uplift ranking (``bench/uplift_selection.py``).

A customer the exposure says nothing about (and everyone the population-wide uplift scores,
whose relation to the reference campaign's products no event states) gets zeros:
``prior_known`` 0 tells the models it is unknown, not "bought nothing".

>>> from streams.campaign_contract import PriorPurchases
>>> prior_features([PriorPurchases(56, 3, 7.5), PriorPurchases(56, 0, 0.0), PriorPurchases(prior_covered_spend=2.0), None]).tolist()
[[1.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from streams.campaign_contract import PriorPurchases

__all__ = ["PRIOR_FEATURES", "bought_covered_before", "prior_features"]

FloatArray = npt.NDArray[np.float64]

PRIOR_FEATURES = ("prior_known", "bought_covered_before")


def bought_covered_before(prior: PriorPurchases | None) -> bool:
    """The customer bought a covered product in the span the exposure describes (False: unknown or none)."""
    if prior is None:
        return False
    if prior.prior_covered_products is not None:
        return prior.prior_covered_products > 0
    return (prior.prior_covered_spend or 0.0) > 0


def prior_features(priors: Sequence[PriorPurchases | None]) -> FloatArray:
    """One row of :data:`PRIOR_FEATURES` per exposure (zeros for None)."""
    x = np.zeros((len(priors), len(PRIOR_FEATURES)), dtype=np.float64)
    for i, prior in enumerate(priors):
        if prior is not None:
            x[i] = (1.0, float(bought_covered_before(prior)))
    return x
