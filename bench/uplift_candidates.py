"""Candidate ways for the online uplift model's arms to learn (``bench/uplift_selection.py --arms``).

Each candidate has the verbs of :class:`state.campaigns.uplift.UpliftModel` that
``bench.eval_uplift.online_uplift`` uses (``score``, ``take_due``, ``resolve``, ``report``) and
stays online: an exposure is scored at the exposure and learned once its label is final (test,
then train), from the pending batch (at most ``learn_per_batch`` rows), never from stored history.
Two-model variants are in ``bench/uplift_arm_candidates.py``, single models in
``bench/uplift_single.py``; the names below are the pre-registered ones of the selection script.
"""

from __future__ import annotations

from typing import Any

from bench.uplift_arm_candidates import Offset, TwoModel
from bench.uplift_single import Interaction, TransformedOutcome
from state.campaigns.uplift import UpliftModel

CANDIDATES: dict[str, Any] = {
    "current": lambda **k: UpliftModel(**k, passes=1, volume=False),  # the live model before this round
    "a: treatment rate x volume": lambda **k: TwoModel(**k, volume=True),
    "b: 5 passes": lambda **k: TwoModel(**k, passes=5),
    "b: 20 passes": lambda **k: TwoModel(**k, passes=20),
    "a + b: 5 passes": lambda **k: TwoModel(**k, passes=5, volume=True),
    "c: Adam 0.01": lambda **k: TwoModel(**k, arm_rate=0.01, optimizer="adam"),
    "c: AdaGrad 0.1": lambda **k: TwoModel(**k, arm_rate=0.1, optimizer="adagrad"),
    "d: offset, SGD x volume, 5 passes": lambda **k: Offset(**k, passes=5),
    "d: offset, AdaGrad 0.1": lambda **k: Offset(**k, arm_rate=0.1, adagrad=True),
    "e: transformed outcome, 5 passes": lambda **k: TransformedOutcome(**k, passes=5),
    "f: interaction, 5 passes": lambda **k: Interaction(**k, passes=5),
    "f: interaction, AdaGrad 0.1": lambda **k: Interaction(**k, arm_rate=0.1, optimizer="adagrad"),
}
