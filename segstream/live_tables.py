"""``segstream segments`` and ``segstream export customers``: the live customer table.

:func:`live_frame` joins what the worker keeps in Redis (RFM state, the evaluator's profiles and
predictions, optionally each customer's bundles) into one pandas table; the two commands print
or write it. Apart from ``segstream.cli`` because it is the one place that reads every store.
"""

from __future__ import annotations

from typing import Any

from agents.settings import Settings

__all__ = ["export_customers", "live_frame", "print_segments"]


async def live_frame(settings: Settings, bundles: bool = False) -> Any:
    """One row per customer: RFM, named segment, cluster, predictions, playbook (and bundles)."""
    from agents.baskets import bundle_config
    from agents.bundle_source import load_bundles
    from segstream.export import rfm_frame, with_bundles, with_playbook, with_predictions, with_profiles
    from state.adapters.redis_baskets import RedisBaskets
    from state.adapters.redis_profiles import RedisProfileStore
    from state.adapters.redis_store import RedisStore
    from state.evaluator.read_model import load_summary
    from state.segments.cutpoints import CutPoints
    from state.segments.segments import load_preset

    preset = load_preset(settings.segment_preset)
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    baskets = RedisBaskets.connect(settings.redis_access, settings.redis_prefix)
    try:
        states, watermark = await store.all_customers(), await store.watermark()
        saved, summary = await profiles.load(), await load_summary(profiles)
        records = saved.records if saved else []
        ids = [s.customer_id for s in states]
        live = await load_bundles(baskets, store, records, ids, bundle_config(settings)) if bundles else None
    finally:
        await store.close()
        await profiles.close()
        await baskets.close()
    version = CutPoints.from_json(saved.cutpoints_json).version if saved and saved.cutpoints_json else None
    frame = with_profiles(rfm_frame(states, watermark), records, saved.clock_ms if saved else None, version)
    frame = with_predictions(frame, records, summary)
    if live is None:
        return with_playbook(frame, preset)
    lists = live.lists(frame["customer_id"])
    offers = [found[0] if found else None for found in lists]  # the playbook's offer: the top bundle
    return with_bundles(with_playbook(frame, preset, offers), lists)


async def export_customers(settings: Settings, fmt: str, output: str) -> int:
    """``segstream export customers``: the live table as csv or parquet, to a file or stdout."""
    from segstream.export import write_frame

    write_frame(await live_frame(settings, bundles=True), "parquet" if fmt == "parquet" else "csv", output)
    return 0


async def print_segments(settings: Settings, *, profile: bool = False) -> int:
    """``segstream segments [--profile]``: named segments, online clusters and, asked, profiles."""
    from segstream.export import cluster_summary, segment_summary
    from state.segments.segments import load_preset

    frame = await live_frame(settings)
    print(f"{len(frame):,} customers, preset {settings.segment_preset}")
    print(segment_summary(frame, load_preset(settings.segment_preset)).to_string())
    clusters = cluster_summary(frame)
    if not clusters.empty:
        print("\nonline clusters (as of the segment evaluator's clock)")
        print(clusters.to_string())
    if profile:
        print("\n" + "\n".join(await _profile_lines(settings)))
    return 0


async def _profile_lines(settings: Settings) -> list[str]:
    """``segstream segments --profile``: the segment profiles, computed now from the live stores."""
    from agents.segment_profiles import live_segment_profiles, profile_lines
    from state.adapters.redis_catalogue import RedisCatalogue
    from state.adapters.redis_profiles import RedisProfileStore
    from state.adapters.redis_store import RedisStore

    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    catalogue = RedisCatalogue.connect(settings.redis_access, settings.redis_prefix)
    try:
        found = await live_segment_profiles(store, profiles, catalogue)
    finally:
        await store.close()
        await profiles.close()
        await catalogue.close()
    return (
        ["no segment profiles yet: the evaluator has not had a clock tick"]
        if found is None
        else profile_lines(found)
    )
