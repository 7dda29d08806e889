"""Where a benchmark's CPU went: every process on the machine, grouped by what it is (Linux ``/proc``).

A latency measured on a machine whose cores are all busy says more about the machine than about
the code: ``bench/freshness.py`` reads each process's CPU time when its producers start and when
they stop, and reports the cores each role used in between (Kafka, Redis, the workers' Faust
processes, their ingest processes, the evaluation process, the load generator, the measuring
consumer, everything else), beside the machine's number of cores.

The worker's children name themselves (``agents.child_process``: ``seg-ingest``,
``seg-evaluate``); the rest is told apart by its command line or by the pids the caller names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ProcessTimes", "cores_by_role", "read_times"]

ProcessTimes = dict[int, tuple[str, float]]
"""pid -> (role, CPU seconds used so far, user + system)."""

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def read_times(named: Mapping[int, str]) -> ProcessTimes:
    """Every process's CPU seconds so far and its role: ``named`` (pid -> role) first, then by name."""
    times: ProcessTimes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) * _TICK_S  # utime, stime
        times[pid] = (named.get(pid) or _role(name, command), seconds)
    return times


def _role(name: str, command: str) -> str:
    if name == "seg-ingest":
        return "ingest processes"
    if name == "seg-evaluate":
        return "evaluation process"
    if name == "redis-server":
        return "Redis"
    if "kafka.Kafka" in command:
        return "Kafka broker"
    if "segstream worker" in command:
        return "workers (Faust)"
    return "everything else"


def cores_by_role(before: ProcessTimes, after: ProcessTimes, seconds: float) -> dict[str, float]:
    """The cores each role used between two readings ``seconds`` apart (a process born meanwhile
    counts from zero; one that ended meanwhile is not counted), largest first."""
    used: dict[str, float] = {}
    for pid, (role, spent) in after.items():
        earlier = before.get(pid)
        start = earlier[1] if earlier is not None and earlier[0] == role else 0.0
        used[role] = used.get(role, 0.0) + max(spent - start, 0.0) / seconds
    return dict(sorted(used.items(), key=lambda item: -item[1]))
