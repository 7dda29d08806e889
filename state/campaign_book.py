"""What the evaluator keeps about campaigns: every exposure, its response, and the response model.

An exposure is keyed by ``(campaign_id, customer_id)``: a customer's first exposure to a
campaign decides their variant (later ones are ignored), and they responded if a response of
theirs to that campaign occurred at or after it, as :func:`state.abtest.exposure_outcomes`
defines it for a batch of events. A response can arrive before its exposure (late delivery):
it waits in ``early_responses`` and counts when the exposure comes. The response model
(:class:`state.response.ResponseModel`) learns each exposure's label when its window ends;
the readout (:meth:`CampaignBook.readout`) counts every response seen so far.

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

from state.abtest import readout
from state.response import ResponseModel
from streams.campaign_contract import CampaignEvent

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
        """The A/B readout rows (``state.abtest.readout``), JSON-safe (no NaN)."""
        if not self.exposures:
            return []
        table = readout(pd.DataFrame(self.outcomes()))
        clean = table.astype(object).where(table.notna(), None)
        return [{str(k): v for k, v in row.items()} for row in clean.to_dict("records")]
