"""What the worker's child processes (evaluation, ingest) do first: die with the worker, and say who they are.

Both are started with ``spawn`` from the worker's event-loop thread. ``PR_SET_PDEATHSIG`` makes the
kernel kill the child when that thread ends (Linux): a worker killed with SIGKILL must not leave a
child evaluating or folding beside its successor. ``PR_SET_NAME`` gives the child a name of its own
in ``ps`` and ``/proc/<pid>/comm`` (all spawned children otherwise show the same Python command line).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

from agents.settings import Settings

__all__ = ["die_with", "name_process", "start_child"]

_PR_SET_NAME = 15
_PR_SET_PDEATHSIG = 1


def die_with(worker_pid: int) -> None:
    """Be killed by the kernel when the worker dies (Linux); exit now if it died already."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != worker_pid:
        os._exit(1)


def name_process(name: str) -> None:
    """Name this process where ``ps`` and ``/proc/<pid>/comm`` show it (Linux keeps 15 bytes: no more)."""
    if len(name.encode()) > 15:
        raise ValueError(f"a process name keeps at most 15 bytes: {name!r}")
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()), 0, 0, 0)


def start_child(name: str, role: str, env: dict[str, str], worker_pid: int) -> Settings:
    """A child's first steps: die with the worker, take ``name``, the worker's settings from ``env``,
    and log to stderr as ``role``. Returns the settings."""
    die_with(worker_pid)
    name_process(name)
    os.environ.update(env)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"[%(asctime)s] [%(process)d] [%(levelname)s] {role}: %(message)s",
        stream=sys.stderr,
    )
    return settings
