"""``make chaos``: a long CDNOW replay through two workers while things break, then overload.

One run, on its own Kafka + Redis (``segstream.stack``) and two ``segstream worker`` processes
kept alive by a supervisor (any worker that exits is restarted and counted):

1. calibration: a burst of generated purchases (new customers ``gen-cal-*``) at full speed;
   the two workers' fold rate over it is the measured capacity;
2. the CDNOW master replay in event-time order with ``--resend-share`` of the events resent
   later (same event_id), paced at ``--speed`` events/s, clock ticks as ``segstream replay``
   sends them; during it, spread over its expected duration: ``--worker-kills`` SIGKILLs of a
   worker (restarted after ``--restart-pause-s``), ``--kafka-restarts`` broker restarts (stop,
   start again on the same port and data dir) and ``--redis-kills`` kill -9 of Redis (restarted
   on the same port and data dir, so it reloads its AOF);
3. overload: ``--producers`` processes publish generated purchases (new customers
   ``gen-ovl*``) at ``--overload-factor`` x the measured capacity for ``--overload-s`` seconds;
4. a final clock tick, then: the consumer group's lag drained to 0, the evaluator's clock at the
   tick, and the checks: every customer's RFM state (``segstream export customers``) equals the
   pandas oracle (``segstream.batch``) over everything published (resends once);
   ``customer-segments`` read from the beginning holds one latest profile per customer of the
   export, matching its scores; worker RSS (``/proc/<pid>/status``) stayed under
   ``--rss-limit-mb``; every worker is running at the end.

Writes ``bench/chaos.json``, prints a table, exits 1 if any check fails. ``--quick`` is a
smoke run (8,000 CDNOW rows, one kill, 5 s of overload). This file holds the options and runs the
phases in order; the load is ``bench/chaos_load.py``, the faults ``bench/chaos_faults.py``, the
waits and checks at the end ``bench/chaos_checks.py``.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd
from chaos_checks import check_segments, print_table, send_final_tick, wait_caught_up
from chaos_faults import FaultInjector, replay_with_faults
from chaos_load import calibrate, overload_summary, run_overload
from harness import (
    Supervisor,
    applied_event_ids,
    compare_to_oracle,
    export_customers,
    read_stats,
    run_and_record,
)

from agents.settings import Settings
from segstream.batch import rfm_table
from segstream.kafka_io import ensure_topics
from segstream.sources import load_cdnow, occurred_at_ms
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import StackInfo, default_cache_dir

RESULTS = Path(__file__).with_name("chaos.json")
FULL = {
    "limit": None,
    "speed": 400.0,
    "worker_kills": 5,
    "calibration_events": 20_000,
    "overload_s": 60.0,
    "drain_timeout_s": 1200.0,
}
QUICK = {
    "limit": 8_000,
    "speed": 800.0,
    "worker_kills": 1,
    "calibration_events": 3_000,
    "overload_s": 5.0,
    "drain_timeout_s": 600.0,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="smoke run: 8,000 rows, 1 kill, 5 s overload")
    p.add_argument("--limit", type=int, help="CDNOW rows to replay (default: all 69,659)")
    p.add_argument("--speed", type=float, help="replay pace, events/s (default 400: about 3 minutes)")
    p.add_argument("--resend-share", type=float, default=0.05, help="share of events resent (default 0.05)")
    p.add_argument("--worker-kills", type=int, help="SIGKILLs of a worker during the replay (default 5)")
    p.add_argument("--kafka-restarts", type=int, default=1, help="broker restarts during the replay")
    p.add_argument("--redis-kills", type=int, default=1, help="kill -9 + restart of Redis during the replay")
    p.add_argument("--restart-pause-s", type=float, default=3.0, help="pause before a killed thing restarts")
    p.add_argument("--calibration-events", type=int, help="generated events to measure capacity (20,000)")
    p.add_argument("--overload-factor", type=float, default=2.0, help="overload rate / measured capacity")
    p.add_argument("--overload-s", type=float, help="seconds of overload (default 60)")
    p.add_argument("--producers", type=int, default=2, help="overload producer processes")
    p.add_argument(
        "--drain-timeout-s",
        type=float,
        help="max wait after the last publish for lag 0, all applied, the evaluator at the final tick "
        "(1200; quick 600)",
    )
    p.add_argument(
        "--tick-every",
        type=int,
        default=5000,
        help="clock tick every N replayed events, as segstream replay does (0: only the final tick)",
    )
    p.add_argument("--rss-limit-mb", type=float, default=1536.0, help="worker RSS bound checked")
    p.add_argument("--seed", type=int, default=20261126)
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    history = load_cdnow()
    if args.limit:
        history = history.head(args.limit)
    history = history.sort_values("occurred_at", kind="stable").reset_index(drop=True)
    root = Path(tempfile.mkdtemp(prefix="segstream-chaos-"))
    print(f"chaos run in {root}: starting Kafka + Redis ...", flush=True)
    stack: StackInfo = start_stack(root, default_cache_dir())
    settings = Settings(
        kafka_url=stack.kafka_url,
        redis_url=stack.redis_url,
        namespace="chaos",
        partitions=4,
        session_timeout_s=10,
        web_enabled=False,
        data_dir=root / "worker",
        log_level="warn",
    )
    ensure_topics(settings)
    sup = Supervisor(settings, root, ["worker-a", "worker-b"], restart_pause_s=1.0)
    injector = FaultInjector(stack, sup, args.restart_pause_s)
    started = time.monotonic()
    result: dict[str, Any] = {"root": str(root)}
    try:
        sup.start_all()
        # 1. calibration, 2. replay with faults, 3. overload
        cal, capacity = calibrate(settings, sup, args.seed, args.calibration_events)
        replay, resends = replay_with_faults(args, settings, injector, history, rng)
        reports, overload_frames, target = run_overload(args, settings, sup, capacity)
        published_at = time.monotonic()

        # 4. final tick, drain, evaluator
        everything = pd.concat([cal, history, *overload_frames], ignore_index=True)
        final_ms = max(occurred_at_ms(everything)) + 1
        send_final_tick(settings, final_ms)
        unique = int(everything["event_id"].nunique())
        drained_s, applied_s, evaluated_s, settled_s = wait_caught_up(
            settings, sup, final_ms, unique, published_at, args.drain_timeout_s
        )
        sup.tick()
        alive = all(s.process is not None and s.process.poll() is None for s in sup.slots)

        # checks
        stats = read_stats(settings)
        live = export_customers(settings, root / "customers.parquet")
        oracle = compare_to_oracle(live, rfm_table(everything))
        segments = check_segments(settings, live)
        applied_ids = applied_event_ids(settings, [str(c) for c in live["customer_id"]])
        rss_max = max(s.rss_max_kb for s in sup.slots) / 1024
        checks = {
            "rfm_equals_oracle": bool(oracle["equal"]),
            "applied_equals_unique_published": applied_ids == unique
            and stats is not None
            and stats.invalid == 0,
            "segments_one_latest_profile_per_customer": segments["missing"] == 0 and segments["extra"] == 0,
            "segments_keys_match_payloads": segments["key_mismatches"] == 0,
            "segments_match_export_scores": segments["score_mismatches"] == 0,
            "lag_drained": drained_s is not None,
            "evaluator_reached_final_tick": evaluated_s is not None,
            "worker_rss_bounded": rss_max <= args.rss_limit_mb,
            "workers_running_at_end": alive,
        }
        result.update(
            {
                "calibration": {"events": len(cal), "capacity_events_per_s": round(capacity, 1)},
                "replay": {
                    "cdnow_events": len(history),
                    "resends": resends,
                    "speed": args.speed,
                    "sent": replay.sent,
                    "seconds": round(replay.seconds, 1),
                    "ticks": replay.ticks,
                    "tick_failures": replay.tick_failures,
                    "unacked_after_retries": replay.unacked,
                },
                "faults": injector.done,
                "overload": overload_summary(args, reports, target, capacity, drained_s),
                "published": {"events": len(everything), "unique_events": unique},
                "store": asdict(stats) if stats is not None else None,
                "applied_event_ids_in_redis": applied_ids,
                "drain_s": round(drained_s, 1) if drained_s is not None else None,
                "applied_all_s": round(applied_s, 1) if applied_s is not None else None,
                "evaluator_s": round(evaluated_s, 1) if evaluated_s is not None else None,
                "evaluator_settled_s": settled_s,  # no late event left, clock still
                "oracle": oracle,
                "segments": segments,
                "workers": sup.report(),
                "worker_rss_max_mb": round(rss_max, 1),
                "rss_limit_mb": args.rss_limit_mb,
                "checks": checks,
            }
        )
    finally:
        sup.stop_all()
        stop_stack(injector.stack)
        result["total_s"] = round(time.monotonic() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    return run_and_record("chaos", parse_args(argv), run, print_table)


if __name__ == "__main__":
    sys.exit(main())
