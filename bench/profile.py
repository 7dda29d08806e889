"""``make profile``: where a worker's time goes, sampled with py-spy on CDNOW master.

Starts a private Kafka + Redis, publishes CDNOW master (69,659 events, no ticks), starts one
``segstream worker`` and records it with ``py-spy record`` (200 samples a second, all threads,
its evaluation process too, busy samples only) over two phases: **ingest** (first event applied -> last) and **evaluate**
(one tick after the last event -> the whole history evaluated and published). Writes, per phase,
``bench/profile/<phase>.txt`` (py-spy's collapsed stacks: open them in speedscope or feed them to
flamegraph.pl for the flame graph), and prints the share of busy samples
under each named piece of the worker (:data:`PIECES`) and the top functions by own time;
``bench/profile/summary.json`` keeps those shares. Samples taken while modules are imported
(worker start-up) are left out. Shares are of the samples py-spy took; they do not add to 100%
(a sample counts under every piece on its stack).
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.settings import Settings
from bench.run import wait_segments, wait_worker
from segstream.demo import spawn_worker, stop_worker
from segstream.kafka_io import ensure_topics, send_tick
from segstream.replay import replay_history
from segstream.sources import load_cdnow, occurred_at_ms
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir
from segstream.stack_processes import free_ports

OUT = Path(__file__).with_name("profile")
PY_SPY = Path(sys.executable).with_name("py-spy")
RATE = 200
PIECES = {
    "Faust's consumer (fetch, drain, events, acks)": r"faust/transport/consumer\.py|faust/streams\.py|faust/events\.py",
    "segstream: one purchase batch, in the ingest process (agents/purchase_step.py step)": r"build_purchase_step\.<locals>\.step ",
    "  decode and validate (streams/contract.py)": r"decode_purchase ",
    "  analytics tallies (state/analytics)": r"\(state/analytics/",
    "  Redis fold (state/adapters/redis_store_fold.py apply_batch)": r"StoreFold\.apply_batch ",
    "evaluator: instants (state/evaluator/evaluate.py advance)": r"Evaluator\.advance ",
    "  lifetime model refits (state/models/btyd.py)": r"\(state/models/btyd\.py",
    "  cluster model learning (state/models/clusters.py)": r"SegmentModel\.learn ",
    "publishing changes, profiles, alerts, moves, on the loop (agents/evaluation_setup.py)": r"evaluated_publisher\.<locals>\.publish ",
    "building those messages, in a thread (agents/evaluated_output.py)": r"evaluated_messages ",
    "aiokafka producer sends": r"aiokafka/producer/",
    "saving the evaluator (agents/evaluator.py _save)": r"SegmentEvaluator\._save ",
}


def record(pid: int, out: Path) -> subprocess.Popen[bytes]:
    command = [
        str(PY_SPY),
        "record",
        "-p",
        str(pid),
        "-r",
        str(RATE),
        "--threads",
        "--nonblocking",
        "--subprocesses",
    ]
    return subprocess.Popen([*command, "--format", "raw", "-o", str(out)], stdout=subprocess.DEVNULL)


def stop(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    spy.wait(timeout=120)


def shares(collapsed: Path) -> dict[str, Any]:
    """Share of busy samples under each piece, and the top own-time functions (imports left out)."""
    under: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or "_find_and_load" in stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r"\(/[^)]*/site-packages/", "(", f) for f in stack.split(";")]
        frames = [re.sub(r"\(/[^)]*?/(agents|state|streams|segstream)/", r"(\1/", f) for f in frames]
        joined = ";".join(frames) + ";"
        for piece, pattern in PIECES.items():
            if re.search(pattern, joined):
                under[piece] += n
        own[frames[-1]] += n
    return {
        "samples": total,
        "pieces": {p: round(under[p] / total, 3) if total else 0.0 for p in PIECES},
        "top_own_time": [[f, round(n / total, 3)] for f, n in own.most_common(12)],
    }


def main() -> None:
    OUT.mkdir(exist_ok=True)
    history = load_cdnow()
    root = Path(tempfile.mkdtemp(prefix="segstream-profile-"))
    stack = start_stack(root, default_cache_dir())
    worker = None
    summary: dict[str, Any] = {"events": len(history), "rate_hz": RATE}
    try:
        settings = Settings(
            kafka_url=stack.kafka_url,
            redis_url=stack.redis_url,
            namespace="profile",
            clock="ticks",
            web_enabled=False,
            web_port=free_ports(1)[0],
            data_dir=root / "worker",
        )
        ensure_topics(settings)
        replay_history(history, settings, progress=False, tick_every=None)
        worker = spawn_worker(settings, root / "worker.log")
        spy = record(worker.pid, OUT / "ingest.txt")
        summary["ingest_seconds"] = round(asyncio.run(wait_worker(settings, len(history))), 1)
        stop(spy)
        until_ms = max(occurred_at_ms(history)) + 1
        spy = record(worker.pid, OUT / "evaluate.txt")
        send_tick(settings, until_ms, source="profile")
        summary["evaluate_seconds"] = round(asyncio.run(wait_segments(settings, until_ms)), 1)
        stop(spy)
    finally:
        if worker is not None:
            stop_worker(worker)
        stop_stack(stack)
    for phase in ("ingest", "evaluate"):
        summary[phase] = shares(OUT / f"{phase}.txt")
        print(f"\n{phase} ({summary[f'{phase}_seconds']} s, {summary[phase]['samples']:,} busy samples)")
        for piece, share in summary[phase]["pieces"].items():
            print(f"  {share:6.1%}  {piece}")
        print("  top own time:")
        for function, share in summary[phase]["top_own_time"]:
            print(f"  {share:6.1%}  {function}")
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwritten: {OUT}/ingest.txt, evaluate.txt (collapsed stacks), summary.json")


if __name__ == "__main__":
    main()
