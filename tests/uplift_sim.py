"""A seeded stream of randomised campaigns shaped like The Complete Journey's, for the uplift model.

Used by ``tests/unit/test_uplift_power.py`` and ``bench/uplift_power.py``: can the Qini with its
bootstrap interval, and the live :class:`state.campaigns.uplift.UpliftModel`, beat random targeting
when the arms are randomised and a heterogeneous effect exists, at the held-out campaigns' volume?

**Shape.** :data:`CAMPAIGNS` copies each real campaign's start day, window length, exposures,
treated exposures and control response rate, in feeding order: the 19 training campaigns, then
the 8 held-out ones (16-23: 17,812 exposures, 2,421 treated, 3-51% per campaign). Sources:
``bench/eval_readout.csv`` (rows of segment ``all``) and ``bench/response_data.py``'s
``campaign_table`` (start, and end of the end date; read by ``bench/eval_response.py``), both
from ``make eval`` of 2026-11-29.

**Customers.** Each exposure is a fresh customer with standard normal ``spend``, ``frequency``,
``recency`` and three features that do nothing (``noise_*``), and the campaign's ``level`` (its
control rate's logit, scaled so that the mean response is about the rate: it stands in for the
descriptors that let the real model tell campaigns apart). Response without treatment:
``expit(level + 0.8 spend - 0.5 recency)``, so customers differ inside a campaign.

**Assignment** is randomised: inside each campaign exactly its real number of treated exposures,
drawn uniformly. **Effect**: the treatment adds ``effect`` (a probability, e.g. 0.03 = 3
percentage points) to the response probability of the customers in the top third by
``frequency`` (``frequency > 0.4307``, the normal's 2/3 quantile), nothing to the others.

**Feeding** is ``bench/eval_uplift.py``'s ``online_uplift``: at each campaign start the due
windows are resolved, then the campaign's exposures are scored (uplift stored) and stay pending
until the campaign's window ends. Held-out campaigns are scored like the others, each by the model
as it stood at its start (before its own labels), as the evaluator does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import expit, logit

from state.campaigns.qini import qini_coefficient
from state.campaigns.uplift import UpliftModel

__all__ = ["CAMPAIGNS", "HELD_OUT", "NAMES", "Stream", "simulate", "within", "within_interval"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DAY_MS = 86_400_000
THIRD = 0.4307  # standard normal quantile 2/3: the top third by frequency has the effect
SPREAD = float(np.sqrt(1 + np.pi * (0.8**2 + 0.5**2) / 8))  # probit approximation: mean rate = rate
NAMES = ("spend", "frequency", "recency", "noise_1", "noise_2", "noise_3", "level", "treated")

# (campaign, start day, window days, exposures, treated, control response rate), feeding order
CAMPAIGNS: tuple[tuple[str, int, int, int, int, float], ...] = (
    ("24", 0, 64, 12, 12, 0.25),  # treated only: its rate stands in for the control rate
    ("25", 22, 62, 17, 17, 0.6471),
    ("26", 44, 54, 118, 118, 0.7119),
    ("27", 86, 47, 2060, 361, 0.7263),
    ("1", 109, 38, 2157, 13, 0.3344),
    ("2", 114, 33, 2166, 48, 0.2247),
    ("3", 119, 57, 2170, 12, 0.3526),
    ("4", 135, 33, 2173, 81, 0.1969),
    ("5", 140, 35, 2186, 166, 0.0337),
    ("6", 156, 33, 2193, 65, 0.0113),
    ("7", 161, 35, 2197, 198, 0.0635),
    ("8", 175, 49, 2186, 1076, 0.8117),
    ("9", 198, 33, 2211, 176, 0.3150),
    ("10", 226, 33, 2207, 123, 0.0547),
    ("11", 240, 47, 2222, 214, 0.1648),
    ("12", 240, 33, 2223, 170, 0.4462),
    ("13", 267, 48, 2239, 1077, 0.8305),
    ("14", 294, 66, 2214, 224, 0.2985),
    ("15", 310, 162, 2213, 17, 0.0118),
    ("16", 324, 33, 2211, 188, 0.0964),
    ("17", 338, 33, 2201, 202, 0.2456),
    ("18", 350, 56, 2229, 1133, 0.8777),
    ("19", 366, 33, 2232, 130, 0.0461),
    ("20", 378, 71, 2232, 244, 0.1735),
    ("21", 387, 33, 2234, 65, 0.0558),
    ("22", 387, 33, 2234, 276, 0.3611),
    ("23", 409, 39, 2239, 183, 0.0559),
)
HELD_OUT = frozenset({"16", "17", "18", "19", "20", "21", "22", "23"})


@dataclass(frozen=True)
class Stream:
    """The held-out exposures: campaign, stored uplift, variant, response, true uplift, and the
    **oracle** ranking (``frequency``: the true uplift's order, its ties within each third broken
    by a fixed score rather than by position, which a bootstrap resample shuffles)."""

    campaign: npt.NDArray[np.str_]
    uplift: FloatArray
    treated: BoolArray
    responded: BoolArray
    truth: FloatArray
    oracle: FloatArray


def _campaign(
    rng: np.random.Generator, n: int, treated_count: int, rate: float, effect: float
) -> tuple[FloatArray, BoolArray, FloatArray]:
    """One campaign's features (columns :data:`NAMES`), responses and true uplift."""
    z = rng.normal(0.0, 1.0, (n, 6))
    level = float(logit(rate)) * SPREAD
    treated = np.zeros(n, dtype=np.bool_)
    treated[rng.permutation(n)[:treated_count]] = True
    base = expit(level + 0.8 * z[:, 0] - 0.5 * z[:, 2])
    truth = np.minimum(base + effect * (z[:, 1] > THIRD), 1.0) - base
    responded = rng.random(n) < base + treated * truth
    x = np.column_stack([z, np.full(n, level), treated]).astype(np.float64)
    return x, responded, truth


def simulate(effect: float, seed: int) -> Stream:
    """Stream every campaign of :data:`CAMPAIGNS` through a fresh ``UpliftModel(names=NAMES)`` (the
    live defaults) as the evaluator feeds it; the held-out campaigns' exposures with their stored uplift."""
    rng = np.random.default_rng(seed)
    parts = [_campaign(rng, n, treated, rate, effect) for _, _, _, n, treated, rate in CAMPAIGNS]
    x = np.vstack([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    truth = np.concatenate([p[2] for p in parts])
    campaign = np.repeat([c[0] for c in CAMPAIGNS], [c[3] for c in CAMPAIGNS])
    ends = np.cumsum([c[3] for c in CAMPAIGNS])
    model = UpliftModel(names=NAMES)
    uplift = np.full(y.size, np.nan)
    for (_, start, days, *_), end, (part, _, _) in zip(CAMPAIGNS, ends, parts, strict=True):
        for due in model.take_due(start * DAY_MS):
            model.resolve(due, y[due.keys])
        idx = np.arange(end - len(part), end, dtype=np.int64)
        uplift[idx], _ = model.score(
            start * DAY_MS, idx, x[idx], np.zeros(idx.size, np.int64), window_ms=days * DAY_MS
        )
    held = np.isin(campaign, sorted(HELD_OUT))
    return Stream(
        campaign[held], uplift[held], x[held, -1] > 0, y[held], truth[held], x[held, NAMES.index("frequency")]
    )


# The two functions below mirror bench/uplift_checks.py's ``within`` and ``within_interval`` (the
# bench's "Qini within a campaign" and its interval; tests do not import bench/).


def within(campaign: npt.NDArray[np.str_], u: FloatArray, t: BoolArray, y: BoolArray) -> float:
    """Exposure-weighted mean over the campaigns of the Qini coefficient inside each."""
    values, sizes = [], []
    for c in np.unique(campaign):
        mine = campaign == c
        values.append(qini_coefficient(u[mine], t[mine], y[mine]))
        sizes.append(int(mine.sum()))
    return float(np.average(values, weights=sizes))


def within_interval(
    campaign: npt.NDArray[np.str_],
    u: FloatArray,
    t: BoolArray,
    y: BoolArray,
    resamples: int = 200,
    seed: int = 7,
) -> tuple[float, float]:
    """95% percentile interval of :func:`within` over bootstrap resamples drawn inside each campaign."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(campaign == c) for c in np.unique(campaign)]
    values = []
    for _ in range(resamples):
        i = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups])
        values.append(within(campaign[i], u[i], t[i], y[i]))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)
