"""``segstream replay SOURCE``: which publisher a source goes to, and its one-line result.

Named purchase histories and .csv/.parquet files go to ``purchases``; the Complete Journey's
campaigns, products and traits and the generated reviews have their own topics and refuse
``--map``. Apart from ``segstream.cli`` because choosing the publisher is most of the command.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from agents.settings import Settings
from segstream.cli_args import EXIT_USAGE, fail

__all__ = ["run_replay"]


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Publish ``args.source`` (see ``segstream replay --help``); the exit status."""
    if args.source in ("completejourney-products", "completejourney-traits"):
        return _replay_catalogue(args, settings)
    if args.source == "completejourney-campaigns":
        if args.map:
            return fail("--map is for .csv/.parquet files, not completejourney-campaigns", EXIT_USAGE)
        from segstream.campaign_replay import replay_campaigns
        from segstream.campaigns import load_completejourney_campaigns
        from segstream.kafka_io import ensure_topics

        events = load_completejourney_campaigns()
        ensure_topics(settings)
        report = replay_campaigns(
            events, settings, speed=args.speed, limit=args.limit, progress=not args.no_progress
        )
        print(f"published {report.sent} events to campaign-events in {report.seconds:.1f}s")
        return 0
    if args.source == "generated-reviews":
        return _replay_generated_reviews(settings, args)
    return _replay_purchases(args, settings)


def _replay_purchases(args: argparse.Namespace, settings: Settings) -> int:
    from segstream.kafka_io import ensure_topics
    from segstream.replay import replay_history, replay_table
    from segstream.sources import NAMED_SOURCES, load_source, parse_mapping

    mapping = parse_mapping(args.map)
    if args.source in NAMED_SOURCES:
        history = load_source(args.source, mapping)
        ensure_topics(settings)
        report = replay_history(
            history, settings, speed=args.speed, limit=args.limit, progress=not args.no_progress
        )
    else:  # a file, streamed in chunks: memory bounded whatever its size
        path = _table_path(args.source)
        ensure_topics(settings)
        report = replay_table(
            path,
            settings,
            mapping=mapping,
            speed=args.speed,
            limit=args.limit,
            progress=not args.no_progress,
        )
    print(f"published {report.sent} events in {report.seconds:.1f}s ({report.rate:,.0f} events/s)")
    return 0


def _replay_generated_reviews(settings: Settings, args: argparse.Namespace) -> int:
    if args.map:
        return fail("--map is for .csv/.parquet files, not generated-reviews", EXIT_USAGE)
    from segstream.kafka_io import ensure_topics
    from segstream.review_commands import publish_generated_reviews

    ensure_topics(settings)
    try:
        line = asyncio.run(
            publish_generated_reviews(settings, args.limit, args.speed, progress=not args.no_progress)
        )
    except ValueError as exc:
        return fail(str(exc))
    print(line)
    return 0


def _table_path(source: str) -> Path:
    from segstream.sources import NAMED_SOURCES, SourceError

    path = Path(source)
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise SourceError(
            f"unknown source {source!r}: use {', '.join(NAMED_SOURCES)} or a .csv/.parquet path"
        )
    if not path.exists():
        raise SourceError(f"no such file: {path}")
    return path


def _replay_catalogue(args: argparse.Namespace, settings: Settings) -> int:
    """``segstream replay completejourney-products|completejourney-traits``: the compacted topics."""
    if args.map:
        return fail(f"--map is for .csv/.parquet files, not {args.source}", EXIT_USAGE)
    from segstream.catalogue_replay import CATALOGUE_SOURCES, replay_catalogue
    from segstream.kafka_io import ensure_topics

    ensure_topics(settings)
    report = replay_catalogue(
        args.source, settings, speed=args.speed, limit=args.limit, progress=not args.no_progress
    )
    print(f"published {report.sent:,} messages to {CATALOGUE_SOURCES[args.source]} in {report.seconds:.1f}s")
    return 0
