"""The worker's side of the evaluation process, against a scripted stand-in for the process on the
other end of a real pipe: it answers the process's questions, forwards its observations, returns
its report, and turns a refusal, a failure or a closed pipe into the exceptions the worker acts on.
Also: what the process's output counts add to the worker's metrics."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import pytest

from agents import metrics
from agents.evaluation_process import EvaluationFailed, EvaluationProcess, _Channel
from agents.evaluation_setup import OutputCounts, count_output
from agents.evaluator import EvaluatorObserver, TickRefused, TickReport
from agents.moves import SEGMENT_MOVES
from agents.settings import Settings
from streams.outputs import Tick

REPORT = TickReport(as_of_ms=86_400_000, instants=2, changes=3, alerts=0, customers_due=3, seconds=0.1)


class _Alive:
    exitcode = None

    def is_alive(self) -> bool:
        return True


def _worker_side(
    script: Callable[[Connection], None], seen: dict[str, list[Any]]
) -> tuple[EvaluationProcess, threading.Thread]:
    ours, theirs = multiprocessing.Pipe()

    async def end_offsets(topic: str, partitions: list[int]) -> dict[int, int]:
        seen["asked"].append((topic, partitions))
        return {p: 100 + p for p in partitions}

    process = EvaluationProcess(
        Settings(namespace="ns"),
        partition_count=lambda topic: 4,
        end_offsets=end_offsets,
        observe=EvaluatorObserver(
            change_latency=lambda *a: seen["latency"].append(a),
            churn=lambda r: seen["churn"].append(r),
            clock=lambda ms: seen["clock"].append(ms),
        ),
        counted=lambda c: seen["counted"].append(c),
    )
    process._channel, process._process = _Channel(ours), _Alive()  # the pipe, without spawning
    stand_in = threading.Thread(target=script, args=(theirs,), daemon=True)
    stand_in.start()
    return process, stand_in


def _seen() -> dict[str, list[Any]]:
    return {"asked": [], "latency": [], "churn": [], "clock": [], "counted": [], "requests": []}


async def test_a_tick_is_answered_observed_and_reported() -> None:
    seen = _seen()

    def script(conn: Connection) -> None:
        seen["requests"].append(conn.recv())
        conn.send(("ask", "ns.purchases", [0, 2]))
        seen["requests"].append(conn.recv())
        conn.send(("observe", "clock", (5,)))
        conn.send(("observe", "change_latency", ([1], [2], 3)))
        conn.send(("report", REPORT))

    process, stand_in = _worker_side(script, seen)
    tick = Tick(86_400_000, {0: 10}, "test")
    assert await process.on_tick(tick) == REPORT
    stand_in.join(5)
    kind, sent, counts = seen["requests"][0]
    assert (kind, sent) == ("tick", tick)
    assert counts == {"ns.purchases": 4, "ns.campaign-events": 4}  # the partition counts go along
    assert seen["requests"][1] == ("answer", {0: 100, 2: 102})
    assert seen["asked"] == [("ns.purchases", [0, 2])]
    assert seen["clock"] == [5] and seen["latency"] == [([1], [2], 3)]


@pytest.mark.parametrize(
    ("reply", "raised"),
    [(("refused", "offset beyond its end"), TickRefused), (("failed", "Traceback: boom"), EvaluationFailed)],
)
async def test_a_refusal_and_a_failure_raise(reply: tuple[str, str], raised: type[Exception]) -> None:
    seen = _seen()

    def script(conn: Connection) -> None:
        conn.recv()
        conn.send(reply)

    process, _ = _worker_side(script, seen)
    with pytest.raises(raised, match=reply[1].split(":")[0]):
        await process.evaluate_late("watermark")


async def test_a_process_that_ends_mid_request_fails_the_request() -> None:
    seen = _seen()

    def script(conn: Connection) -> None:
        conn.recv()
        conn.close()  # the process died

    process, _ = _worker_side(script, seen)
    with pytest.raises(EvaluationFailed, match="ended"):
        await process.on_tick(Tick(1, {}, "test"))


def _value(counter: Any, *labels: str) -> float:
    return float(counter.labels(*labels)._value.get())


def test_output_counts_are_added_to_the_workers_metrics() -> None:
    before = (
        _value(metrics.SEGMENT_CHANGES, "purchase"),
        _value(metrics.ALERTS, "overdue"),
        _value(SEGMENT_MOVES, "entered", "cluster"),
    )
    count_output(
        OutputCounts(Counter({"purchase": 3}), Counter({"overdue": 2}), Counter({("entered", "cluster"): 4}))
    )
    after = (
        _value(metrics.SEGMENT_CHANGES, "purchase"),
        _value(metrics.ALERTS, "overdue"),
        _value(SEGMENT_MOVES, "entered", "cluster"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [3, 2, 4]
