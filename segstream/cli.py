"""The ``segstream`` command line: the composition root.

Settings are read once here from ``SEGSTREAM_*`` and passed down. Bad arguments
end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from agents.settings import Settings
from segstream.basket_cli import add_basket_parser
from segstream.model_lines import alert_gate_lines, churn_calibration_lines

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_FAILED = 1
FIT_TIMEOUT_S = 120.0  # segstream fit waits this long for the evaluator's new lifetime model


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected events per second or 'max', got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"speed must be a finite number > 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _instant(text: str) -> int:
    """A date (UTC midnight) or an RFC 3339 time with offset, as epoch ms."""
    try:
        if len(text) == 10:
            parsed = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date YYYY-MM-DD or an RFC 3339 time like 1999-06-30T00:00:00Z, got {text!r}"
        ) from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"time {text!r} needs an offset, e.g. Z or +02:00")
    return int(parsed.timestamp() * 1000)


MAX_ADVANCE_DAYS = 36_500  # a century: anything longer is a typo, and the tick window refuses it anyway


def _days(text: str) -> float:
    try:
        value = float(text.removesuffix("d"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of days like 365 or 365d, got {text!r}"
        ) from None
    if not math.isfinite(value) or not 0 < value <= MAX_ADVANCE_DAYS:
        raise argparse.ArgumentTypeError(f"days must be a number in (0, {MAX_ADVANCE_DAYS:,}], got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="segstream", description="Real-time customer segmentation over Kafka and Redis.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="start local Kafka + Redis + a worker, replay real data, show the results"
    )
    demo.add_argument(
        "--source", default="cdnow", help="cdnow (default), cdnow-sample, completejourney or a path"
    )
    demo.add_argument("--speed", type=_speed, default=None, help="events/s or 'max' (default)")
    demo.add_argument("--limit", type=_positive_int, help="replay only the first N events")
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
    replay.add_argument("--speed", type=_speed, default=None, help="events/s or 'max' (default)")
    replay.add_argument("--limit", type=_positive_int, help="publish only the first N events")
    replay.add_argument("--map", default="", help="column mapping for files: customer_id=Col,amount=Col,...")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")

    clock = commands.add_parser(
        "clock", help="show or advance the event-time clock segments are evaluated at"
    )
    clock_actions = clock.add_subparsers(dest="action", required=True, parser_class=_Parser, metavar="ACTION")
    clock_actions.add_parser("show", help="print the evaluator's clock and the event-time watermark")
    advance = clock_actions.add_parser("advance", help="send a clock tick: evaluate segments up to a time")
    when = advance.add_mutually_exclusive_group(required=True)
    when.add_argument("--to", type=_instant, help="date (UTC) or RFC 3339 time to advance to")
    when.add_argument("--by", type=_days, help="days past the current clock (or the watermark)")

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


def _windows(text: str) -> int:
    value = _positive_int(text)
    if value > 56:
        raise argparse.ArgumentTypeError(f"a week has 56 three-hour windows, got {text!r}")
    return value


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
    best_time.add_argument("--windows", type=_windows, default=3, help="how many windows (default 3)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "SEGSTREAM_" + str(first["loc"][0]).upper() if first["loc"] else "SEGSTREAM_*"
        return _fail(f"bad setting {name}: {first['msg']}", EXIT_USAGE)
    try:
        return _dispatch(args, settings)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `segstream export customers | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0
    except _USER_ERRORS as exc:
        return _fail(str(exc))


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
    if args.command == "replay" and args.source in ("completejourney-products", "completejourney-traits"):
        return _replay_catalogue(args, settings)
    if args.command == "replay" and args.source == "completejourney-campaigns":
        if args.map:
            return _fail("--map is for .csv/.parquet files, not completejourney-campaigns", EXIT_USAGE)
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
    if args.command == "replay" and args.source == "generated-reviews":
        return _replay_generated_reviews(settings, args)
    if args.command == "replay":
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
    if args.command == "clock":
        return asyncio.run(
            _clock(settings, args.action, getattr(args, "to", None), getattr(args, "by", None))
        )
    if args.command == "segments":
        return asyncio.run(_segments(settings, profile=args.profile))
    if args.command == "fit":
        return asyncio.run(_fit(settings))
    if args.command == "models":
        return asyncio.run(_models(settings))
    if args.command == "campaigns":
        return asyncio.run(_campaigns(settings))
    if args.command == "cohorts":
        from segstream.analytics_cli import cohorts_command

        return asyncio.run(cohorts_command(settings, args.by, args.format, args.output))
    if args.command == "best-time":
        from segstream.analytics_cli import best_time_command

        problem = asyncio.run(best_time_command(settings, args.customer, args.windows))
        return _fail(problem) if problem else 0
    if args.command == "reviews":
        from segstream.review_commands import print_reviews

        return asyncio.run(print_reviews(settings, args.by, args.format, args.output))
    if args.command == "basket":
        from segstream.basket_cli import run_basket

        return asyncio.run(run_basket(settings, args))
    return asyncio.run(_export(settings, args.format, args.output))


def _replay_generated_reviews(settings: Settings, args: argparse.Namespace) -> int:
    if args.map:
        return _fail("--map is for .csv/.parquet files, not generated-reviews", EXIT_USAGE)
    from segstream.kafka_io import ensure_topics
    from segstream.review_commands import publish_generated_reviews

    ensure_topics(settings)
    try:
        line = asyncio.run(
            publish_generated_reviews(settings, args.limit, args.speed, progress=not args.no_progress)
        )
    except ValueError as exc:
        return _fail(str(exc))
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


async def _live_frame(settings: Settings, bundles: bool = False) -> Any:
    from agents.baskets import bundle_config
    from agents.bundle_source import load_bundles
    from segstream.export import rfm_frame, with_bundles, with_playbook, with_predictions, with_profiles
    from state.adapters.redis_baskets import RedisBaskets
    from state.adapters.redis_profiles import RedisProfileStore
    from state.adapters.redis_store import RedisStore
    from state.segments.cutpoints import CutPoints
    from state.segments.segments import load_preset

    preset = load_preset(settings.segment_preset)
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    baskets = RedisBaskets.connect(settings.redis_access, settings.redis_prefix)
    try:
        states, watermark = await store.all_customers(), await store.watermark()
        saved, summary = await profiles.load(), await profiles.summary()
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


async def _clocks(settings: Settings) -> tuple[int | None, int | None]:
    """(evaluator clock, event-time watermark) in epoch ms."""
    from state.adapters.redis_profiles import RedisProfileStore
    from state.adapters.redis_store import RedisStore

    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        summary, watermark = await profiles.summary(), await store.watermark()
    finally:
        await store.close()
        await profiles.close()
    return (int(summary["as_of_ms"]) if summary else None), watermark


async def _clock(settings: Settings, action: str, to_ms: int | None, by_days: float | None) -> int:
    from streams.outputs import rfc3339

    clock_ms, watermark = await _clocks(settings)
    if action == "show":
        print(f"evaluator clock: {rfc3339(clock_ms) if clock_ms is not None else 'not started'}")
        print(f"event-time watermark: {rfc3339(watermark) if watermark is not None else 'no events'}")
        return 0
    if to_ms is None:
        base = clock_ms if clock_ms is not None else watermark
        if base is None:
            return _fail("--by needs a clock or a watermark to count from: no events yet, use --to")
        to_ms = base + round((by_days or 0) * 86_400_000)
    if clock_ms is not None and to_ms <= clock_ms:
        return _fail(f"the clock is already at {rfc3339(clock_ms)}; it only moves forward")
    from streams.limits import InvalidEvent, wall_clock_ms

    try:
        settings.input_limits().check_event_time("clock tick", to_ms, wall_clock_ms())
    except InvalidEvent as exc:
        return _fail(exc.reason)
    from segstream.kafka_io import ensure_topics, send_tick

    ensure_topics(settings)
    send_tick(settings, to_ms, source="cli")
    print(f"clock tick sent: evaluate segments up to {rfc3339(to_ms)}")
    return 0


async def _models(settings: Settings) -> int:
    import pandas as pd

    from state.adapters.redis_profiles import RedisProfileStore
    from state.evaluator.predict import LifetimeModel
    from streams.outputs import rfc3339

    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        summary = await profiles.summary()
    finally:
        await profiles.close()
    if summary is None:
        print("no models yet: the segment evaluator has not had a clock tick")
    else:
        churn = summary["churn"]
        auc = (
            f"{churn['auc']:.3f}" if churn["auc"] is not None else "n/a (needs churned and retained examples)"
        )
        print(f"as of {rfc3339(summary['as_of_ms'])} (the segment evaluator's clock)")
        print(f"cut-points: version {summary['cutpoint_version']}")
        print(f"clusters: model version {summary['model_version']}, {len(summary['clusters'])} clusters")
        print(
            f"churn (River logistic regression, horizon {churn['horizon_days']:g} days, version {churn['version']}): "
            f"prequential ROC AUC {auc} over {churn['examples']:,} labelled predictions, "
            f"{churn['positives']:,} churned"
        )
        if churn["by_segment"]:
            table = pd.DataFrame(churn["by_segment"]).T[["auc", "examples", "positives"]]
            table.index.name = "segment at prediction"
            print(table.to_string(float_format=lambda v: f"{v:.3f}"))
        if "calibration" in churn:  # saved by a version that keeps it
            for line in churn_calibration_lines(churn):
                print(line)
        if "alert_gates" in summary:
            for line in alert_gate_lines(summary["alert_gates"]):
                print(line)
        lifetime = summary.get("lifetime")
        if lifetime is None:
            print(
                "lifetime model: not fitted yet (needs 100 buyers, 10 repeat buyers, four weeks of history)"
            )
        else:
            model = LifetimeModel.from_json(lifetime)
            print(f"lifetime model: {model.describe()}, fitted at {rfc3339(model.fitted_at_ms)} (weeks)")
        print(_response_line(summary["response"]))
        from segstream.quality_lines import cluster_quality_lines

        print("\n".join(cluster_quality_lines(summary.get("cluster_quality"))))
    return 0


def _auc(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "n/a"


def _response_line(response: dict[str, Any]) -> str:
    arms = ", ".join(f"{arm} {_auc(row['auc'])}" for arm, row in response.get("by_variant", {}).items())
    return (
        f"response (River logistic regression, window {response['window_days']:g} days, version "
        f"{response['version']}): prequential ROC AUC {_auc(response['auc'])} over {response['examples']:,} labelled "
        f"exposures ({response['positives']:,} responded{'; by arm: ' + arms if arms else ''}); "
        f"{response['exposures']:,} exposures seen"
    )


def _offline_line() -> str | None:
    """The held-out split figures of ``make eval`` beside the live ones, when the bench file is there."""
    found = Path(__file__).resolve().parents[1] / "bench" / "eval_response.json"
    if not found.exists():
        return None
    auc = json.loads(found.read_text())["results"]["auc"]
    return (
        f"make eval (bench/eval_response.json): prequential {auc['online_prequential_all']:.3f} over all exposures, "
        f"held-out campaigns {auc['online_test']:.3f} (best batch "
        f"{max(auc['logistic_regression_test'], auc['random_forest_test']):.3f})"
    )


def _uplift_lines(uplift: dict[str, Any] | None) -> list[str]:
    if not uplift or not uplift.get("version") or not uplift.get("population"):
        return ["uplift: not learned yet (needs an ended window in both arms)"]
    pop = uplift["population"]
    lines = [
        f"uplift (treatment arm minus control arm, inverse-propensity weighted, version {uplift['version']}): "
        f"prequential AUC treatment arm {_auc(uplift['treatment']['auc'])}, control arm "
        f"{_auc(uplift['control']['auc'])}, propensity {_auc(uplift['propensity']['auc'])}; "
        f"suggested target list {pop['suggested_target']:,} of {pop['customers']:,} buyers "
        f"({pop['suggested_share']:.0%}, estimated uplift above 0), about {pop['estimated_incremental']:.1f} "
        "incremental responses (observational: see state/campaigns/uplift.py)"
    ]
    for row in pop["by_segment"]:
        lines.append(
            f"  {row['segment']}: mean uplift {row['mean_uplift']:+.3f}, target {row['suggested_target']:,} "
            f"of {row['customers']:,}"
        )
    return lines


async def _campaigns(settings: Settings) -> int:
    import pandas as pd

    from state.adapters.redis_profiles import RedisProfileStore
    from streams.outputs import rfc3339

    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        summary = await profiles.summary()
    finally:
        await profiles.close()
    if summary is None or not summary["campaigns"]:
        print("no campaign exposures evaluated yet")
        return 0
    print(f"as of {rfc3339(summary['as_of_ms'])} (the segment evaluator's clock)")
    print(_response_line(summary["response"]))
    offline = _offline_line()
    if offline:
        print(offline)
    print("\n".join(_uplift_lines(summary.get("uplift"))))
    table = pd.DataFrame(summary["campaigns"])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


async def _fit(settings: Settings, timeout_s: float = FIT_TIMEOUT_S) -> int:
    """Ask the segment evaluator to refit the lifetime model now (a clock tick with ``refit``)."""
    from segstream.kafka_io import ensure_topics, send_tick
    from state.adapters.redis_profiles import RedisProfileStore
    from state.evaluator.predict import LifetimeModel
    from streams.outputs import rfc3339

    clock_ms, watermark = await _clocks(settings)
    if watermark is None:
        return _fail("nothing to fit: no purchases in the store yet")
    as_of = max(clock_ms or 0, watermark + 1)  # just past the last purchase, or the clock if later
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        before = await profiles.summary()
        version = int(before["lifetime"]["version"]) if before and before.get("lifetime") else 0
        ensure_topics(settings)
        send_tick(settings, as_of, source="cli", refit=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            summary = await profiles.summary()
            if summary and summary.get("lifetime") and int(summary["lifetime"]["version"]) > version:
                model = LifetimeModel.from_json(summary["lifetime"])
                break
            await asyncio.sleep(0.25)
        else:
            return _fail(
                f"no new lifetime model within {timeout_s:.0f}s: is a worker running, and are there at least "
                "100 buyers, 10 repeat buyers and four weeks of history?"
            )
    finally:
        await profiles.close()
    print(
        f"{model.describe()}; log-likelihood {model.bgnbd.log_likelihood:.1f} "
        f"({model.customers:,} customers, weeks, as of {rfc3339(model.fitted_at_ms)})"
    )
    return 0


async def _export(settings: Settings, fmt: str, output: str) -> int:
    from segstream.export import write_frame

    write_frame(await _live_frame(settings, bundles=True), "parquet" if fmt == "parquet" else "csv", output)
    return 0


async def _segments(settings: Settings, *, profile: bool = False) -> int:
    from segstream.export import cluster_summary, segment_summary
    from state.segments.segments import load_preset

    frame = await _live_frame(settings)
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


def _replay_catalogue(args: argparse.Namespace, settings: Settings) -> int:
    """``segstream replay completejourney-products|completejourney-traits``: the compacted topics."""
    if args.map:
        return _fail(f"--map is for .csv/.parquet files, not {args.source}", EXIT_USAGE)
    from segstream.catalogue_replay import CATALOGUE_SOURCES, replay_catalogue
    from segstream.kafka_io import ensure_topics

    ensure_topics(settings)
    report = replay_catalogue(
        args.source, settings, speed=args.speed, limit=args.limit, progress=not args.no_progress
    )
    print(f"published {report.sent:,} messages to {CATALOGUE_SOURCES[args.source]} in {report.seconds:.1f}s")
    return 0


def _fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"segstream: error: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    return code


def _user_errors() -> tuple[type[BaseException], ...]:
    from segstream.kafka_io import KAFKA_ERRORS
    from segstream.sources import SourceError
    from segstream.stack_info import StackError
    from state.adapters.redis_store import REDIS_ERRORS
    from state.segments.segments import PresetError

    return (SourceError, StackError, PresetError, OSError, *KAFKA_ERRORS, *REDIS_ERRORS)


_USER_ERRORS = _user_errors()
