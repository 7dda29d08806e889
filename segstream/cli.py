"""The ``segstream`` command line: the composition root.

Settings are read once here from ``SEGSTREAM_*`` and passed down. Bad arguments
end with one line on stderr and exit status 2 (argument types and :func:`fail` are in
``segstream.cli_args``). Each command's work is in its own module, imported when it runs:
``replay_commands``, ``clock_commands``, ``live_tables``, ``model_commands``, ``analytics_cli``,
``review_commands``, ``basket_cli``, ``demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from agents.settings import Settings
from segstream.basket_cli import add_basket_parser
from segstream.cli_args import EXIT_USAGE, days, fail, instant, positive_int, speed, windows

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="segstream", description="Real-time customer segmentation over Kafka and Redis.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="start local Kafka + Redis + a worker, replay real data, show the results"
    )
    demo.add_argument(
        "--source", default="cdnow", help="cdnow (default), cdnow-sample, completejourney or a path"
    )
    demo.add_argument("--speed", type=speed, default=None, help="events/s or 'max' (default)")
    demo.add_argument("--limit", type=positive_int, help="replay only the first N events")
    demo.add_argument(
        "--root", type=Path, default=Path(".cache/demo"), help="where the demo stack keeps its data"
    )

    stack = commands.add_parser("stack", help="start or stop a local Kafka + Redis in the background")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.add_argument(
        "--root", type=Path, default=Path(".cache/stack"), help="stack data dir (.cache/stack)"
    )

    commands.add_parser("worker", help="run a worker against SEGSTREAM_KAFKA_URL / SEGSTREAM_REDIS_URL")
    commands.add_parser("topics", help="create the segstream topics that do not exist yet")

    replay = commands.add_parser("replay", help="publish a purchase history to the purchases topic")
    replay.add_argument(
        "source",
        help="cdnow, cdnow-sample, completejourney, or a .csv/.parquet path; "
        "completejourney-campaigns publishes campaign exposures and responses to campaign-events, "
        "completejourney-products and completejourney-traits the catalogue and households' traits; "
        "generated-reviews publishes generated reviews (--limit of them, default 10,000) by the store's "
        "customers to reviews",
    )
    replay.add_argument("--speed", type=speed, default=None, help="events/s or 'max' (default)")
    replay.add_argument("--limit", type=positive_int, help="publish only the first N events")
    replay.add_argument("--map", default="", help="column mapping for files: customer_id=Col,amount=Col,...")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")

    clock = commands.add_parser(
        "clock", help="show or advance the event-time clock segments are evaluated at"
    )
    clock_actions = clock.add_subparsers(dest="action", required=True, parser_class=_Parser, metavar="ACTION")
    clock_actions.add_parser("show", help="print the evaluator's clock and the event-time watermark")
    advance = clock_actions.add_parser("advance", help="send a clock tick: evaluate segments up to a time")
    when = advance.add_mutually_exclusive_group(required=True)
    when.add_argument("--to", type=instant, help="date (UTC) or RFC 3339 time to advance to")
    when.add_argument("--by", type=days, help="days past the current clock (or the watermark)")

    segments = commands.add_parser("segments", help="print the named-segment table of the live population")
    segments.add_argument(
        "--profile",
        action="store_true",
        help="also each segment's and cluster's profile: top categories with lift, channel mix, traits, "
        "response rate, churn share",
    )
    commands.add_parser(
        "fit",
        help="refit the lifetime model (BG/NBD + Gamma-Gamma) on the live population now, as a new version",
    )
    commands.add_parser(
        "models",
        help="the live models: versions, churn model's prequential AUC by segment, cluster quality per version",
    )
    commands.add_parser(
        "campaigns", help="the A/B readout per campaign x segment x variant, and the response model"
    )

    _add_analytics_parsers(commands)
    reviews = commands.add_parser(
        "reviews",
        help="review figures per region or per current named segment: reviews, mean score, distribution, "
        "late share, late-vs-on-time gap",
    )
    reviews.add_argument("--by", choices=["region", "segment"], default="region")
    reviews.add_argument("--format", choices=["table", "csv"], default="table")
    reviews.add_argument("--output", default="-", help="file path, or - for stdout (default)")

    export = commands.add_parser("export", help="write the live customer table")
    export.add_argument("what", choices=["customers"])
    export.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export.add_argument("--output", default="-", help="file path, or - for stdout (default)")
    add_basket_parser(commands, _Parser)
    return parser


def _add_analytics_parsers(commands: Any) -> None:
    """``segstream cohorts`` and ``segstream best-time`` (segstream/analytics_cli.py)."""
    cohorts = commands.add_parser(
        "cohorts", help="the acquisition-cohort table: customers active, retention and revenue by month"
    )
    cohorts.add_argument(
        "--by", choices=["channel", "category"], help="split by acquisition channel or category"
    )
    cohorts.add_argument("--format", choices=["csv", "parquet"], default="csv")
    cohorts.add_argument("--output", default="-", help="file path, or - for stdout (default)")
    best_time = commands.add_parser(
        "best-time", help="best 3-hour windows of the week to reach a customer, or every segment's"
    )
    best_time.add_argument("customer", nargs="?", help="a customer id (default: every named segment)")
    best_time.add_argument("--windows", type=windows, default=3, help="how many windows (default 3)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "SEGSTREAM_" + str(first["loc"][0]).upper() if first["loc"] else "SEGSTREAM_*"
        return fail(f"bad setting {name}: {first['msg']}", EXIT_USAGE)
    try:
        return _dispatch(args, settings)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `segstream export customers | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0
    except _USER_ERRORS as exc:
        return fail(str(exc))


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "demo":
        from segstream.demo import run_demo

        return run_demo(settings, args.source, speed=args.speed, limit=args.limit, root=args.root)
    if args.command == "stack":
        return _stack(args.action, args.root)
    if args.command == "worker":
        from agents.worker import run_worker
        from segstream.kafka_io import ensure_topics

        ensure_topics(settings)
        run_worker(settings)
        return 0
    if args.command == "topics":
        from segstream.kafka_io import ensure_topics

        created = ensure_topics(settings)
        print("created: " + (", ".join(created) if created else "nothing (all exist)"))
        return 0
    if args.command == "replay":
        from segstream.replay_commands import run_replay

        return run_replay(args, settings)
    if args.command == "clock":
        from segstream.clock_commands import clock_command

        return asyncio.run(
            clock_command(settings, args.action, getattr(args, "to", None), getattr(args, "by", None))
        )
    if args.command == "segments":
        from segstream.live_tables import print_segments

        return asyncio.run(print_segments(settings, profile=args.profile))
    if args.command == "fit":
        from segstream.clock_commands import fit_command

        return asyncio.run(fit_command(settings))
    if args.command == "models":
        from segstream.model_commands import print_models

        return asyncio.run(print_models(settings))
    if args.command == "campaigns":
        from segstream.model_commands import print_campaigns

        return asyncio.run(print_campaigns(settings))
    if args.command == "cohorts":
        from segstream.analytics_cli import cohorts_command

        return asyncio.run(cohorts_command(settings, args.by, args.format, args.output))
    if args.command == "best-time":
        from segstream.analytics_cli import best_time_command

        problem = asyncio.run(best_time_command(settings, args.customer, args.windows))
        return fail(problem) if problem else 0
    if args.command == "reviews":
        from segstream.review_commands import print_reviews

        return asyncio.run(print_reviews(settings, args.by, args.format, args.output))
    if args.command == "basket":
        from segstream.basket_cli import run_basket

        return asyncio.run(run_basket(settings, args))
    from segstream.live_tables import export_customers

    return asyncio.run(export_customers(settings, args.format, args.output))


def _stack(action: str, root: Path) -> int:
    from segstream.stack import load_stack, start_stack, stop_stack
    from segstream.stack_info import default_cache_dir

    info = load_stack(root)
    if action == "up":
        if info is None:
            info = start_stack(root, default_cache_dir())
        print(f"SEGSTREAM_KAFKA_URL={info.kafka_url}\nSEGSTREAM_REDIS_URL={info.redis_url}")
        return 0
    if action == "down":
        if info is not None:
            stop_stack(info)
        print("stack stopped" if info else "no stack running")
        return 0
    if info is None:
        print("no stack running")
        return 3
    print(f"SEGSTREAM_KAFKA_URL={info.kafka_url}\nSEGSTREAM_REDIS_URL={info.redis_url}")
    return 0


def _user_errors() -> tuple[type[BaseException], ...]:
    from segstream.kafka_io import KAFKA_ERRORS
    from segstream.sources import SourceError
    from segstream.stack_info import StackError
    from state.adapters.redis_store import REDIS_ERRORS
    from state.segments.segments import PresetError

    return (SourceError, StackError, PresetError, OSError, *KAFKA_ERRORS, *REDIS_ERRORS)


_USER_ERRORS = _user_errors()
