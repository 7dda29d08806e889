"""Load the pickles segstream saved, across the move of ``state``'s modules into rooms.

The evaluator's snapshot (``state.evaluator.evaluate.Evaluator.snapshot``) and the cluster model's
(``state.models.clusters.SegmentModel.snapshot``) are pickles: they name each saved object's class
by its module. Snapshots written before ``state`` had rooms name ``state.churn``, ``state.uplift``
and so on; :func:`load` reads them under their new names, so a worker upgraded in place resumes from
the models it saved instead of failing on ``ModuleNotFoundError``. Objects that later moved to
another module within their room (:data:`MOVED`, e.g. the churn model's shared learner, split out
of ``state.models.churn``) are found at their new module the same way. Only load what segstream
itself saved: a pickle runs code.

>>> import pickle
>>> from state.customer.rfm import CustomerState
>>> ROOMS["rfm"]
'customer'
>>> RoomsUnpickler.moved("state.rfm"), RoomsUnpickler.moved("state.customer.rfm"), RoomsUnpickler.moved("numpy")
('state.customer.rfm', 'state.customer.rfm', 'numpy')
>>> RoomsUnpickler.moved("state.churn", "Prequential"), RoomsUnpickler.moved("state.models.churn", "ChurnModel")
('state.models.prequential', 'state.models.churn')
>>> s = CustomerState(customer_id="c1")
>>> load(pickle.dumps(s)) == s
True
"""

from __future__ import annotations

import io
import pickle
from typing import Any

__all__ = ["MOVED", "ROOMS", "RoomsUnpickler", "load"]

ROOMS = {
    module: room
    for room, modules in {
        "customer": "rfm profiles store tally profile_store",
        "segments": "segments cutpoints features population playbook moves drift",
        "models": "alerts calibration model_health btyd churn clusters cluster_rules reservoir",
        "campaigns": "descriptors prior_features response uplift qini balance abtest campaign_book",
        "evaluator": "evaluate predict cluster_quality messages event_clock",
        "analytics": (
            "analytics_reads analytics_tallies basket_tally baskets bundles best_time cohorts catalogue "
            "profile_tallies reviews review_store segment_profiles"
        ),
    }.items()
    for module in modules.split()
}
"""The room of each module that was directly in ``state`` before the rooms (Redis adapters are never pickled)."""

MOVED = {
    ("state.models.churn", name): f"state.models.{module}"
    for module, names in {
        "online_logistic": "OnlineLogistic PendingBatch clip_standardised",
        "prequential": "Prequential",
    }.items()
    for name in names.split()
}
"""``(module, name) -> module`` of each pickled object (class, or function a model holds) that moved
out of its module after the rooms: the learner the churn and campaign models share, its batches and
its AUC counters left ``state.models.churn`` (River's pipeline holds ``clip_standardised``)."""


class RoomsUnpickler(pickle.Unpickler):
    """A pickle reader that finds a class saved as ``state.<module>`` in ``state.<room>.<module>``."""

    @staticmethod
    def moved(module: str, name: str = "") -> str:
        """The module of ``module``'s object ``name`` today (of the module itself without a name)."""
        prefix, _, rest = module.partition(".")
        if prefix == "state" and rest in ROOMS:
            module = f"state.{ROOMS[rest]}.{rest}"
        return MOVED.get((module, name), module)

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(self.moved(module, name), name)


def load(data: bytes) -> Any:
    """The object pickled in ``data`` (a snapshot segstream saved, old module names followed)."""
    return RoomsUnpickler(io.BytesIO(data)).load()
