"""Baseline for ``make bench``: a Faust worker that consumes the purchases topic and does nothing.

Same framework, same batching (``take_events``), same stream buffer, same loop (uvloop) as the real worker;
writes ``{"events": n, "seconds": first->last, "cpu_seconds": this process's CPU first->last}`` to the path in argv[2] once it has seen
argv[1] events, then exits.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import faust
import mode.loop

from agents.settings import Settings
from agents.worker import broker_credentials
from streams.topics import PURCHASES, declare


def main() -> None:
    expected, out = int(sys.argv[1]), Path(sys.argv[2])
    settings = Settings()
    mode.loop.use("uvloop")
    (settings.data_dir / "noop").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.app_id}-noop",
        broker=settings.kafka_url,
        store="memory://",
        web_enabled=False,
        datadir=str(settings.data_dir / "noop"),
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_credentials=broker_credentials(settings),
        stream_buffer_maxsize=settings.stream_buffer,
    )
    topic = declare(app, settings, PURCHASES)
    seen = {"n": 0, "first": 0.0, "cpu": 0.0}

    @app.agent(topic)
    async def noop(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            if not seen["n"]:
                seen["first"], seen["cpu"] = time.perf_counter(), time.process_time()
            seen["n"] += len(events)
            if seen["n"] >= expected:
                elapsed, cpu = time.perf_counter() - seen["first"], time.process_time() - seen["cpu"]
                out.write_text(json.dumps({"events": seen["n"], "seconds": elapsed, "cpu_seconds": cpu}))
                os._exit(0)

    worker = faust.Worker(app, loglevel="warn", quiet=True)
    worker.spinner = None  # as agents.worker does: no root logger at DEBUG
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
