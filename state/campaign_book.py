"""What the evaluator keeps about campaigns: every exposure, its response, and the response model.

An exposure is keyed by ``(campaign_id, customer_id)``: a customer's first exposure to a
campaign decides their variant (later ones are ignored), and they responded if a response of
theirs to that campaign occurred at or after it, as :func:`state.campaigns.abtest.exposure_outcomes`
defines it for a batch of events. A response can arrive before its exposure (late delivery):
it waits in ``early_responses`` and counts when the exposure comes. The response model
(:class:`state.campaigns.response.ResponseModel`) learns each exposure's label when its window ends;
the readout (:meth:`CampaignBook.readout`) counts every response seen so far. The uplift model
(:class:`state.campaigns.uplift.UpliftModel`) scores and learns the same exposures with the same labels.
An exposure that describes its campaign (``campaign_days``) is labelled at the end of its
campaign's length instead of the response model's window; the last descriptor seen is the
*reference campaign* the per-customer propensity and uplift are computed for.

>>> book = CampaignBook(ResponseModel(names=("known", "treated")))
>>> e = CampaignEvent("e1", "c1", "8", "treatment", "exposure", 100)
>>> r = CampaignEvent("r1", "c1", "8", "treatment", "response", 150)
>>> book.add_exposure(e, "Champions"), book.add_exposure(e, "Champions")
(0, None)
>>> book.add_response(r)
True
>>> book.responded([0]).tolist(), book.outcomes()[0]["responded"]
([True], True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from state.campaigns.abtest import readout
from state.campaigns.descriptors import DESCRIPTOR_FEATURES, descriptor_features, descriptor_json
from state.campaigns.prior_features import PRIOR_FEATURES
from state.campaigns.qini import suggested_target
from state.campaigns.response import ResponseModel
from state.customer.rfm import DAY_MS
from state.campaigns.uplift import UpliftModel
from streams.campaign_contract import CampaignDescriptor, CampaignEvent

__all__ = ["CampaignBook", "Exposure"]


@dataclass
class Exposure:
    campaign_id: str
    customer_id: str
    variant: str
    occurred_at_ms: int
    segment: str  # the customer's named segment at the exposure ("unknown": none yet)
    responded: bool = False


@dataclass
class CampaignBook:
    response: ResponseModel
    exposures: list[Exposure] = field(default_factory=list)  # key = index, the response model's row key
    index: dict[tuple[str, str], int] = field(default_factory=dict)  # (campaign, customer) -> key
    early_responses: dict[tuple[str, str], int] = field(default_factory=dict)  # first response time
    uplift: UpliftModel | None = None  # built from the response model's names when None
    reference: CampaignDescriptor | None = None  # the last descriptor an exposure carried
    population_uplift: dict[str, Any] = field(default_factory=dict)  # latest note_population

    def __post_init__(self) -> None:
        if self.uplift is None:
            r = self.response
            self.uplift = UpliftModel(r.names, r.segments, r.learning_rate, r.window_ms)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Snapshots saved before the uplift model (or with other features) start new models."""
        self.__dict__.update(state)
        self.__dict__.setdefault("reference", None)
        self.__dict__.setdefault("population_uplift", {})
        r = self.response
        missing = [n for n in (*DESCRIPTOR_FEATURES, *PRIOR_FEATURES) if n not in r.names]
        if missing:  # saved before descriptors or prior purchases: relearn
            names = (*r.names, *missing)
            self.response = ResponseModel(names=names, segments=r.segments, window_ms=r.window_ms)
        current = self.__dict__.get("uplift")
        if current is None or current.names != self.response.names:
            self.uplift = None
            self.__post_init__()

    def _uplift(self) -> UpliftModel:
        assert self.uplift is not None
        return self.uplift

    def resolve_due(self, at_ms: int) -> None:
        """Label the exposures whose window ended: the response model's, then the uplift model's."""
        for due in self.response.take_due(at_ms):
            self.response.resolve(due, self.responded(due.batch.rows))
        for pending in self._uplift().take_due(at_ms):
            self._uplift().resolve(pending, self.responded(pending.keys))

    def score(
        self,
        at_ms: int,
        keys: npt.NDArray[np.int64],
        x: npt.NDArray[np.float64],
        segments: npt.NDArray[np.int64],
        descriptors: list[CampaignDescriptor | None],
    ) -> None:
        """Score new exposures with both models, grouped by response window (a described
        campaign's length, else the model's window)."""
        windows = np.array(
            [
                d.campaign_days * DAY_MS if d and d.campaign_days else self.response.window_ms
                for d in descriptors
            ]
        )
        for window in np.unique(windows).tolist():
            mine = windows == window
            self.response.score(at_ms, keys[mine], x[mine], segments[mine], window_ms=int(window))
            self._uplift().score(at_ms, keys[mine], x[mine], segments[mine], window_ms=int(window))
        described = [d for d in descriptors if d is not None]
        if described:
            self.reference = described[-1]

    def reference_features(self, n: int) -> npt.NDArray[np.float64]:
        """The reference campaign's descriptor features, ``n`` rows (zeros before any descriptor).
        No event states the population's earlier purchases of its products: their prior-purchase
        features stay zero (``prior_known`` 0)."""
        return np.repeat(descriptor_features([self.reference]), n, axis=0)

    def note_population(
        self, at_ms: int, x: npt.NDArray[np.float64], segment_names: list[str]
    ) -> npt.NDArray[np.float64]:
        """Estimated uplift of everyone in ``x`` (treated features) for the reference campaign; keeps
        per segment the mean and the suggested target list (:func:`state.campaigns.qini.suggested_target`)."""
        u = self._uplift().uplift(x)
        names = np.array(segment_names, dtype=object)
        rows = []
        for name in sorted(set(segment_names)):
            mine = u[names == name]
            count, share, incremental = suggested_target(mine)
            rows.append(
                {
                    "segment": name,
                    "customers": int(mine.size),
                    "mean_uplift": float(mine.mean()),
                    "suggested_target": count,
                    "suggested_share": share,
                    "estimated_incremental": incremental,
                }
            )
        count, share, incremental = suggested_target(u)
        self.population_uplift = {
            "as_of_ms": at_ms,
            "reference_campaign": descriptor_json(self.reference),
            "customers": int(u.size),
            "mean_uplift": float(u.mean()) if u.size else None,
            "suggested_target": count,
            "suggested_share": share,
            "estimated_incremental": incremental,
            "by_segment": rows,
        }
        return u

    def uplift_report(self) -> dict[str, Any]:
        """The uplift model (arm and propensity AUCs, scorers) and the latest population figures."""
        return {**self._uplift().report(), "population": self.population_uplift or None}

    def add_exposure(self, event: CampaignEvent, segment: str) -> int | None:
        """The new exposure's key, or None if the customer was already exposed to the campaign."""
        pair = (event.campaign_id, event.customer_id)
        if pair in self.index:
            return None
        early = self.early_responses.pop(pair, None)
        exposure = Exposure(
            event.campaign_id,
            event.customer_id,
            event.variant,
            event.occurred_at_ms,
            segment,
            responded=early is not None and early >= event.occurred_at_ms,
        )
        self.index[pair] = len(self.exposures)
        self.exposures.append(exposure)
        return self.index[pair]

    def add_response(self, event: CampaignEvent) -> bool:
        """Mark the exposure responded; True if it was one (a response before any exposure waits)."""
        pair = (event.campaign_id, event.customer_id)
        key = self.index.get(pair)
        if key is None:
            first = self.early_responses.get(pair)
            self.early_responses[pair] = (
                event.occurred_at_ms if first is None else min(first, event.occurred_at_ms)
            )
            return False
        exposure = self.exposures[key]
        if event.occurred_at_ms >= exposure.occurred_at_ms and not exposure.responded:
            exposure.responded = True
            return True
        return False

    def responded(self, keys: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        return np.array([self.exposures[int(k)].responded for k in np.asarray(keys).tolist()], dtype=np.bool_)

    def outcomes(self) -> list[dict[str, Any]]:
        return [
            {
                "customer_id": e.customer_id,
                "campaign_id": e.campaign_id,
                "variant": e.variant,
                "responded": e.responded,
                "segment": e.segment,
            }
            for e in self.exposures
        ]

    def readout(self) -> list[dict[str, Any]]:
        """The A/B readout rows (``state.campaigns.abtest.readout``), JSON-safe (no NaN)."""
        if not self.exposures:
            return []
        table = readout(pd.DataFrame(self.outcomes()))
        clean = table.astype(object).where(table.notna(), None)
        return [{str(k): v for k, v in row.items()} for row in clean.to_dict("records")]
