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
smoke run (8,000 CDNOW rows, one kill, 5 s of overload).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import random
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
from harness import (
    Supervisor,
    TrackedProducer,
    applied_event_ids,
    compare_to_oracle,
    consumer_lag,
    evaluator_clock,
    export_customers,
    late_entries_pending,
    read_stats,
    run_and_record,
)

from agents.settings import Settings
from segstream.batch import rfm_table
from segstream.kafka_io import ensure_topics, read_topic, send_tick
from segstream.sources import load_cdnow, occurred_at_ms, wire_events
from segstream.stack import restart_server, start_stack, stop_stack
from segstream.stack_info import StackInfo, default_cache_dir
from state.customer.rfm import DAY_MS
from streams.topics import CUSTOMER_SEGMENTS, PURCHASES

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
GEN_START_MS = int(pd.Timestamp("1997-01-01", tz="UTC").timestamp() * 1000)
GEN_END_MS = int(pd.Timestamp("1998-06-30", tz="UTC").timestamp() * 1000)


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


def generated_frame(tag: str, seed: int, count: int) -> pd.DataFrame:
    """``count`` generated purchases of new customers ``gen-<tag>-<n>`` (about 20 each), deterministic."""
    rng = np.random.default_rng([seed, zlib.crc32(tag.encode())])
    pool = max(1, count // 20)
    customers = rng.integers(0, pool, count)
    ms = rng.integers(GEN_START_MS, GEN_END_MS, count) // 1000 * 1000
    cents = rng.integers(100, 20_000, count)
    return pd.DataFrame(
        {
            "event_id": [f"gen-{tag}:{i}" for i in range(count)],
            "customer_id": [f"gen-{tag}-{c}" for c in customers],
            "occurred_at": pd.to_datetime(ms, unit="ms", utc=True),
            "amount": cents / 100,
            "type": "purchase",
        }
    )


def _paced_send(
    producer: TrackedProducer,
    topic: str,
    messages: list[tuple[str, bytes]],
    rate: float | None,
    deadline_s: float | None = None,
    after_each: Any = None,
) -> tuple[int, float]:
    """Send in order at most ``rate``/s until done or ``deadline_s``; flush, resend the unacked."""
    started = time.perf_counter()
    sent = 0
    for key, value in messages:
        if deadline_s is not None and time.perf_counter() - started >= deadline_s:
            break
        producer.send(topic, key.encode(), value, sent)
        sent += 1
        if rate is not None and sent % 50 == 0:
            ahead = sent / rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
        if after_each is not None:
            after_each(sent)
    producer.flush()
    for _ in range(20):
        failed = producer.take_failed()
        if not failed:
            break
        for i in failed:
            producer.send(topic, messages[i][0].encode(), messages[i][1], i)
        producer.flush()
    return sent, time.perf_counter() - started


def overload_child(
    settings: Settings, tag: str, seed: int, count: int, rate: float, seconds: float, out: Any
) -> None:
    """One overload producer process: publish its generated slice at ``rate`` for ``seconds``."""
    messages = list(wire_events(generated_frame(tag, seed, count)))
    producer = TrackedProducer(settings)
    try:
        sent, took = _paced_send(producer, settings.topic(PURCHASES), messages, rate, deadline_s=seconds)
        out.put({"tag": tag, "sent": sent, "unacked": len(producer.failed), "seconds": took})
    finally:
        producer.close()


@dataclass
class Replay:
    """The replay thread's report."""

    sent: int = 0
    seconds: float = 0.0
    ticks: int = 0
    tick_failures: int = 0
    unacked: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


def replay_thread(
    settings: Settings,
    messages: list[tuple[str, bytes]],
    times: list[int],
    speed: float,
    tick_every: int,
    out: Replay,
) -> None:
    producer = TrackedProducer(settings)

    def tick(sent: int) -> None:
        if tick_every and sent % tick_every == 0 and sent < len(times):
            try:
                producer.flush()
                send_tick(settings, times[sent] // DAY_MS * DAY_MS, source="chaos")
                out.ticks += 1
            except Exception:
                out.tick_failures += 1

    try:
        out.sent, out.seconds = _paced_send(
            producer, settings.topic(PURCHASES), messages, speed, after_each=tick
        )
        out.unacked = len(producer.failed)
    except Exception as exc:
        out.error = repr(exc)
    finally:
        producer.close()
        out.done.set()


def wait_applied(settings: Settings, sup: Supervisor, total: int, timeout_s: float) -> float | None:
    """Fold rate (events/s) over ``total`` events: first applied -> all applied (None on timeout)."""
    base = read_stats(settings)
    start_applied = base.applied if base else 0
    first: tuple[float, int] | None = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sup.tick()
        stats = read_stats(settings)
        now = time.perf_counter()
        if stats is not None:
            done = stats.applied - start_applied
            if first is None and done > 0:
                first = (now, done)
            if done >= total and first is not None:
                return (total - first[1]) / max(now - first[0], 1e-6)
        time.sleep(0.1)
    return None


def fault_plan(args: argparse.Namespace) -> list[str]:
    """Faults in order: worker kills with the broker restart and the Redis kill spread among them."""
    plan = ["worker"] * args.worker_kills
    for i in range(args.kafka_restarts):
        plan.insert(min(len(plan), (i + 1) * len(plan) // (args.kafka_restarts + 1) + i), "kafka")
    for i in range(args.redis_kills):
        plan.insert(min(len(plan), (2 * i + 1) * len(plan) // (2 * args.redis_kills) + 1), "redis")
    return plan


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
    frames: list[pd.DataFrame] = []
    faults: list[dict[str, Any]] = []
    started = time.monotonic()
    result: dict[str, Any] = {"root": str(root)}
    try:
        sup.start_all()
        # 1. calibration
        cal = generated_frame("cal", args.seed, args.calibration_events)
        producer = TrackedProducer(settings)
        _paced_send(producer, settings.topic(PURCHASES), list(wire_events(cal)), None)
        producer.close()
        frames.append(cal)
        capacity = wait_applied(settings, sup, len(cal), timeout_s=600)
        if capacity is None:
            raise RuntimeError("calibration: the workers did not fold the burst within 600 s")
        print(f"calibration: {len(cal):,} generated events, capacity {capacity:,.0f} events/s", flush=True)

        # 2. replay with faults
        wire = list(wire_events(history))
        times = occurred_at_ms(history)
        order: list[tuple[float, int]] = [(float(i), i) for i in range(len(wire))]
        resent = rng.sample(range(len(wire)), int(len(wire) * args.resend_share))
        order += [(i + rng.randint(1, 5000) + 0.5, i) for i in resent]
        order.sort()
        messages = [wire[i] for _, i in order]
        msg_times = [times[i] for _, i in order]
        expected_s = len(messages) / args.speed
        plan = fault_plan(args)
        print(
            f"replay: {len(history):,} CDNOW events + {len(resent):,} resends at {args.speed:,.0f}/s "
            f"(~{expected_s:.0f} s); faults: {', '.join(plan) or 'none'}",
            flush=True,
        )
        replay = Replay()
        thread = threading.Thread(
            target=replay_thread,
            args=(settings, messages, msg_times, args.speed, args.tick_every, replay),
            daemon=True,
        )
        replay_started = time.monotonic()
        thread.start()
        victim = 0
        while plan or not replay.done.is_set():
            sup.tick()
            elapsed = time.monotonic() - replay_started
            due = plan and (
                replay.done.is_set()
                or elapsed >= (len(faults) + 1) / (len(faults) + len(plan) + 1) * expected_s
            )
            if due:
                kind = plan.pop(0)
                t0 = time.monotonic()
                if kind == "worker":
                    sup.kill(victim, args.restart_pause_s)
                    detail = sup.slots[victim].name
                    victim = 1 - victim
                elif kind == "kafka":
                    stack = restart_server(stack, "kafka", pause_s=args.restart_pause_s)
                    detail = f"broker restarted, pid {stack.kafka_pid}"
                else:
                    stack = restart_server(stack, "redis", kill=True, pause_s=args.restart_pause_s)
                    detail = f"redis kill -9, restarted with its AOF, pid {stack.redis_pid}"
                faults.append(
                    {
                        "fault": kind,
                        "at_s": round(elapsed, 1),
                        "after_replay_end": replay.done.is_set(),
                        "detail": detail,
                        "took_s": round(time.monotonic() - t0, 1),
                    }
                )
                print(f"  t+{elapsed:5.0f}s fault: {kind} ({detail})", flush=True)
            time.sleep(0.5)
        thread.join()
        if replay.error:
            raise RuntimeError(f"replay failed: {replay.error}")
        frames.append(history)
        print(f"replay: sent {replay.sent:,} in {replay.seconds:.0f} s, {replay.ticks} ticks", flush=True)

        # 3. overload
        target = capacity * args.overload_factor
        per = target / args.producers
        count = math.ceil(per * args.overload_s)
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        tags = [f"ovl{p}" for p in range(args.producers)]
        children = [
            ctx.Process(
                target=overload_child, args=(settings, tag, args.seed, count, per, args.overload_s, queue)
            )
            for tag in tags
        ]
        print(
            f"overload: {args.producers} producers at {target:,.0f} events/s for {args.overload_s:.0f} s",
            flush=True,
        )
        for child in children:
            child.start()
        reports: list[dict[str, Any]] = []
        while len(reports) < len(children):
            sup.tick()
            while not queue.empty():
                reports.append(queue.get())
            if all(not c.is_alive() for c in children) and queue.empty() and len(reports) < len(children):
                raise RuntimeError("an overload producer died without reporting")
            time.sleep(0.5)
        for child in children:
            child.join()
        for r in reports:
            frames.append(generated_frame(r["tag"], args.seed, count).head(r["sent"]))
        overload_sent = sum(r["sent"] for r in reports)
        overload_s = max(r["seconds"] for r in reports)
        published_at = time.monotonic()

        # 4. final tick, drain, evaluator
        everything = pd.concat(frames, ignore_index=True)
        final_ms = max(occurred_at_ms(everything)) + 1
        for _ in range(30):
            try:
                send_tick(settings, final_ms, source="chaos")
                break
            except Exception:
                time.sleep(2)
        # one wait for all three, as they overlap: the evaluator may hold a rebalance (and so the
        # offset commits) while it works through the final tick
        unique = int(everything["event_id"].nunique())
        drained_s = applied_s = evaluated_s = None
        zero_polls = 0
        while time.monotonic() - published_at < args.drain_timeout_s:
            sup.tick()
            now = time.monotonic() - published_at
            if drained_s is None:
                lag = consumer_lag(settings, settings.topic(PURCHASES))
                zero_polls = zero_polls + 1 if lag == 0 else 0
                drained_s = now if zero_polls >= 2 else None
            if applied_s is None:
                stats = read_stats(settings)
                # with lag 0 this says every event was folded (a retried fold counts as redelivered)
                applied_s = now if stats is not None and stats.applied + stats.redelivered >= unique else None
            if evaluated_s is None and (evaluator_clock(settings) or 0) >= final_ms:
                evaluated_s = now
            if None not in (drained_s, applied_s, evaluated_s):
                break
            time.sleep(1)
        clock_ok = evaluated_s is not None
        # late events (folded after the clock caught up) are swept at instants just past it, one
        # look per second: wait until none is left on the agenda and the clock has stood still for 5 s
        settled_at, last_clock = time.monotonic(), evaluator_clock(settings)
        while clock_ok and time.monotonic() - published_at < args.drain_timeout_s:
            time.sleep(1)
            clock = evaluator_clock(settings)
            if clock != last_clock or late_entries_pending(settings, clock or 0):
                settled_at, last_clock = time.monotonic(), clock
            elif time.monotonic() - settled_at >= 5:
                break
        settled_s = round(settled_at - published_at, 1)

        def took(value: float | None) -> str:
            return f"after {value:.0f} s" if value is not None else f"NOT within {args.drain_timeout_s:.0f} s"

        print(
            f"after the last publish: lag 0 {took(drained_s)}, every event applied {took(applied_s)}, "
            f"evaluator at the final tick {took(evaluated_s)}",
            flush=True,
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
            "evaluator_reached_final_tick": clock_ok,
            "worker_rss_bounded": rss_max <= args.rss_limit_mb,
            "workers_running_at_end": alive,
        }
        result.update(
            {
                "calibration": {"events": len(cal), "capacity_events_per_s": round(capacity, 1)},
                "replay": {
                    "cdnow_events": len(history),
                    "resends": len(resent),
                    "speed": args.speed,
                    "sent": replay.sent,
                    "seconds": round(replay.seconds, 1),
                    "ticks": replay.ticks,
                    "tick_failures": replay.tick_failures,
                    "unacked_after_retries": replay.unacked,
                },
                "faults": faults,
                "overload": {
                    "generated": True,
                    "producers": args.producers,
                    "target_events_per_s": round(target, 1),
                    "sent": overload_sent,
                    "seconds": round(overload_s, 1),
                    "achieved_events_per_s": round(overload_sent / overload_s, 1) if overload_s else None,
                    "achieved_factor_of_capacity": round(overload_sent / overload_s / capacity, 2)
                    if overload_s
                    else None,
                    "unacked_after_retries": sum(r["unacked"] for r in reports),
                    # what the workers sustained while the producers shared the machine with them:
                    # the overload's events over the time from its start until the lag was 0
                    "sustained_events_per_s": round(overload_sent / (overload_s + drained_s), 1)
                    if drained_s is not None
                    else None,
                    "achieved_factor_of_sustained": round((overload_s + drained_s) / overload_s, 2)
                    if drained_s is not None and overload_s
                    else None,
                },
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
        stop_stack(stack)
        result["total_s"] = round(time.monotonic() - started, 1)
    return result


def check_segments(settings: Settings, live: pd.DataFrame) -> dict[str, Any]:
    """``customer-segments`` from the beginning, latest value per key, against the export."""
    latest: dict[str, dict[str, Any]] = {}
    raw = key_mismatches = 0
    for m in read_topic(settings, settings.topic(CUSTOMER_SEGMENTS), idle_timeout_s=5.0):
        raw += 1
        key = m.key.decode() if m.key is not None else ""
        doc = json.loads(m.value)
        key_mismatches += doc.get("customer_id") != key
        latest[key] = doc
    exported = set(live["customer_id"])
    rows = live.set_index("customer_id")
    score_mismatches = 0
    mismatch_examples: list[dict[str, Any]] = []
    for customer in sorted(exported & set(latest)):
        doc, row = latest[customer], rows.loc[customer]
        if pd.isna(row["r_score"]):
            continue
        expected = (int(row["r_score"]), int(row["f_score"]), int(row["m_score"]), row["rfm_segment"])
        got = (doc.get("r_score"), doc.get("f_score"), doc.get("m_score"), doc.get("rfm_segment"))
        if got != expected:
            score_mismatches += 1
            if len(mismatch_examples) < 5:
                mismatch_examples.append({"customer_id": customer, "export": expected, "profile": got})
    return {
        "messages": raw,
        "distinct_keys": len(latest),
        "export_customers": len(exported),
        "missing": len(exported - set(latest)),
        "missing_examples": sorted(exported - set(latest))[:5],
        "extra": len(set(latest) - exported),
        "key_mismatches": key_mismatches,
        "score_mismatches": score_mismatches,
        "score_mismatch_examples": mismatch_examples,
    }


def print_table(result: dict[str, Any]) -> None:
    print("\n| measure | figure |\n|---|---|")
    cal, rep, ovl = result["calibration"], result["replay"], result["overload"]
    rows = [
        (
            "capacity (calibration, 2 workers)",
            f"{cal['capacity_events_per_s']:,.0f} events/s over {cal['events']:,} generated events",
        ),
        (
            "replay",
            f"{rep['cdnow_events']:,} CDNOW + {rep['resends']:,} resends at {rep['speed']:,.0f}/s in {rep['seconds']:.0f} s",
        ),
        ("faults", ", ".join(f"{f['fault']}@{f['at_s']:.0f}s" for f in result["faults"]) or "none"),
        (
            "overload (generated customers)",
            f"{ovl['sent']:,} events in {ovl['seconds']:.0f} s = {ovl['achieved_events_per_s']:,.0f}/s ({ovl['achieved_factor_of_capacity']}x capacity, target {ovl['target_events_per_s']:,.0f}/s)",
        ),
        (
            "overload against what the workers sustained meanwhile",
            f"{ovl['sustained_events_per_s']:,.0f}/s consumed from its start to lag 0: producers at "
            f"{ovl['achieved_factor_of_sustained']}x that",
        ),
        ("time to drain (lag 0 after the last publish)", f"{result['drain_s']} s"),
        ("every event applied after the last publish", f"{result['applied_all_s']} s"),
        ("evaluator at the final tick after the last publish", f"{result['evaluator_s']} s"),
        (
            "every late event evaluated (agenda empty, clock still) after the last publish",
            f"{result['evaluator_settled_s']} s",
        ),
        (
            "customers: oracle / live",
            f"{result['oracle']['customers_expected']:,} / {result['oracle']['customers_live']:,}",
        ),
        (
            "customer-segments: messages / distinct keys",
            f"{result['segments']['messages']:,} / {result['segments']['distinct_keys']:,}",
        ),
        (
            "worker RSS max / final (MB)",
            ", ".join(f"{w['name']} {w['rss_max_mb']} / {w['rss_final_mb']}" for w in result["workers"]),
        ),
        (
            "worker restarts (SIGKILLed by us; other exits, codes)",
            ", ".join(
                f"{w['name']} {w['restarts']} ({w['sigkilled_by_harness']}; {w['other_exits']} {w['other_exit_codes']})"
                for w in result["workers"]
            ),
        ),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    print()


def main(argv: list[str] | None = None) -> int:
    return run_and_record("chaos", parse_args(argv), run, print_table)


if __name__ == "__main__":
    sys.exit(main())
