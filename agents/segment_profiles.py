"""Segment profiles from the live stores, when asked (``GET /segments``, ``segstream segments --profile``).

Reads the evaluator's saved rows and models, the per-customer ``cust:category`` / ``cust:channel``
tallies, the traits and the campaign exposures, then runs the pure
:func:`state.analytics.segment_profiles.segment_profiles` in a thread: never in the evaluator's hot path.
"""

from __future__ import annotations

import asyncio
from typing import Any

from state.analytics.catalogue import CatalogueReader
from state.analytics.profile_tallies import CATEGORY_TABLE, CHANNEL_TABLE
from state.analytics.segment_profiles import TOP_CATEGORIES, TRAIT_FIELDS, segment_profiles
from state.customer import snapshots
from state.customer.profile_store import ProfileStore
from state.customer.store import CustomerStore
from state.evaluator.read_model import load_summary
from streams.campaign_contract import CONTROL
from streams.outputs import rfc3339

__all__ = ["ExposureCache", "live_segment_profiles", "profile_lines"]


def _exposures(model: bytes | None) -> list[tuple[str, bool]]:
    """``(customer_id, responded)`` of every exposure outside the control arm, from the saved models.

    The snapshot is a pickle the evaluator itself saved (``Evaluator.snapshot``).
    """
    if not model:
        return []
    book = snapshots.load(model).get("campaigns")
    if book is None:
        return []
    return [(e.customer_id, e.responded) for e in book.exposures if e.variant != CONTROL]


ExposureCache = dict[int, list[tuple[str, bool]]]
"""The exposures read from the saved models, by the generation they were saved with (the latest only)."""


async def live_segment_profiles(
    store: CustomerStore,
    profiles: ProfileStore,
    catalogue: CatalogueReader,
    top: int = TOP_CATEGORIES,
    cache: ExposureCache | None = None,
) -> dict[str, Any] | None:
    """The profiles of every named segment and cluster as of the evaluator's clock; None before its first tick.

    ``cache``: keeps the exposures between calls while the evaluator has not saved again (reading
    them means unpickling all the saved models: seconds on The Complete Journey).
    """
    saved, summary = await profiles.load(), await load_summary(profiles)
    if saved is None or summary is None:
        return None
    ids = [str(r["customer_id"]) for r in saved.records if r.get("profile")]
    categories = await store.tallies(CATEGORY_TABLE, ids)
    channels = await store.tallies(CHANNEL_TABLE, ids)
    traits = await catalogue.traits_of(ids)
    segments = [s.segment for s in summary.segments]
    clusters = {c.cluster: c.name for c in summary.clusters}

    def compute() -> dict[str, Any]:
        exposures = cache.get(saved.generation) if cache is not None else None
        if exposures is None:
            exposures = _exposures(saved.model)
            if cache is not None:
                cache.clear()
                cache[saved.generation] = exposures
        return segment_profiles(
            saved.records, segments, clusters, categories, channels, traits, exposures, top
        )

    found = await asyncio.to_thread(compute)
    return {"as_of": rfc3339(summary.as_of_ms), **found}


def _figures(shares: dict[str, float], limit: int = 6) -> str:
    shown = [f"{k} {v:.2f}" for k, v in list(shares.items())[:limit]]
    return ", ".join(shown) + (", ..." if len(shares) > limit else "") if shown else "none"


def _group_lines(title: str, group: dict[str, Any]) -> list[str]:
    categories = ", ".join(
        f"{c['category']} {c['share']:.2f} (lift {c['lift']:.2f})" for c in group["top_categories"]
    )
    response = group["response"]
    rate = "n/a" if response["rate"] is None else f"{response['rate']:.3f}"
    churn = "n/a" if group["churn_share"] is None else f"{group['churn_share']:.3f}"
    lines = [
        f"{title} ({group['customers']:,} customers)",
        f"  top categories (share of members who bought it, lift against everyone): {categories or 'none'}",
        f"  channel mix (share of purchases): {_figures(group['channel_mix'])}",
    ]
    traits = group["traits"]
    if traits is None:
        lines.append("  traits: none known")
    else:
        lines.append(f"  traits ({traits['customers']:,} with traits):")
        lines += [f"    {field}: {_figures(traits[field])}" for field in TRAIT_FIELDS]
    lines.append(
        f"  response rate {rate} ({response['responses']:,} of {response['exposures']:,} exposures outside "
        f"control); churn share (High band) {churn}"
    )
    return lines


def profile_lines(found: dict[str, Any]) -> list[str]:
    """The profiles as text, one block per group (``segstream segments --profile``)."""
    lines = [f"segment profiles as of {found['as_of']} (the segment evaluator's clock)"]
    if found["population"] is not None:
        lines += _group_lines("everyone", found["population"])
    for row in found["segments"]:
        lines += _group_lines(f"segment {row['segment']}", row)
    for row in found["clusters"]:
        lines += _group_lines(f"cluster {row['cluster']} {row['name']}", row)
    return lines
