"""Faults of ``bench/chaos.py`` (``make chaos``): the CDNOW replay while workers, Kafka and Redis break.

``fault_plan`` orders the faults, ``FaultInjector`` applies one at a time (a worker SIGKILL, a
broker restart, a Redis kill -9) and keeps the stack as it stands after each restart, and
``replay_with_faults`` runs the replay thread with the faults spread over its expected duration.
Kept apart from the load (what is sent) and the checks (what is judged): this is what breaks.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from chaos_load import Replay, replay_thread
from harness import Supervisor

from agents.settings import Settings
from segstream.sources import occurred_at_ms, wire_events
from segstream.stack import restart_server
from segstream.stack_info import StackInfo


def fault_plan(args: argparse.Namespace) -> list[str]:
    """Faults in order: worker kills with the broker restart and the Redis kill spread among them."""
    plan = ["worker"] * args.worker_kills
    for i in range(args.kafka_restarts):
        plan.insert(min(len(plan), (i + 1) * len(plan) // (args.kafka_restarts + 1) + i), "kafka")
    for i in range(args.redis_kills):
        plan.insert(min(len(plan), (2 * i + 1) * len(plan) // (2 * args.redis_kills) + 1), "redis")
    return plan


@dataclass
class FaultInjector:
    """Applies one fault at a time to the run's workers and servers; ``stack`` is the stack as it
    stands after the latest restart (new pids), so whoever stops it at the end stops the live one."""

    stack: StackInfo
    sup: Supervisor
    pause_s: float
    victim: int = 0  # the worker slot killed next (the two take turns)
    done: list[dict[str, Any]] = field(default_factory=list)

    def inject(self, kind: str) -> str:
        """One fault of ``kind`` (``worker``, ``kafka`` or ``redis``) now; what was done."""
        if kind == "worker":
            self.sup.kill(self.victim, self.pause_s)
            detail = self.sup.slots[self.victim].name
            self.victim = 1 - self.victim
        elif kind == "kafka":
            self.stack = restart_server(self.stack, "kafka", pause_s=self.pause_s)
            detail = f"broker restarted, pid {self.stack.kafka_pid}"
        else:
            self.stack = restart_server(self.stack, "redis", kill=True, pause_s=self.pause_s)
            detail = f"redis kill -9, restarted with its AOF, pid {self.stack.redis_pid}"
        return detail


def replay_with_faults(
    args: argparse.Namespace,
    settings: Settings,
    injector: FaultInjector,
    history: pd.DataFrame,
    rng: random.Random,
) -> tuple[Replay, int]:
    """Phase 2: ``history`` in event-time order with ``args.resend_share`` of it resent later, paced
    at ``args.speed``, while ``fault_plan(args)`` is applied spread over the replay's expected
    duration (faults still due when it ends are applied right after). Returns the replay's report
    and the number of resends; the faults are in ``injector.done``."""
    sup = injector.sup
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
    faults = injector.done
    while plan or not replay.done.is_set():
        sup.tick()
        elapsed = time.monotonic() - replay_started
        due = plan and (
            replay.done.is_set() or elapsed >= (len(faults) + 1) / (len(faults) + len(plan) + 1) * expected_s
        )
        if due:
            kind = plan.pop(0)
            t0 = time.monotonic()
            detail = injector.inject(kind)
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
    print(f"replay: sent {replay.sent:,} in {replay.seconds:.0f} s, {replay.ticks} ticks", flush=True)
    return replay, len(resent)
